// Writing: a school editor creates and edits cases (with the bouwstenen scan) and lessons; a
// brigadier edits their own profile. Everything a school editor writes is a draft until a
// moderator of the region publishes it; moderators and admins may publish at once. Replacing
// uses If-Match, so two people editing the same case never overwrite each other silently.

import { el } from "../dom.js";
import { get, request, ApiError } from "../api.js";
import { AVAILABILITY, BOUWSTENEN, LICENCES, PHASES, PRINCIPLES, SECTORS, label, t } from "../i18n.js";
import { checkboxes, clearErrors, field, formSummary, showErrors, textValue, themeList } from "../forms.js";
import { currentAccount, mayPublish } from "../session.js";
import { navigate } from "../router.js";
import { flash } from "../app.js";
import { card } from "../records.js";

// The stored record's content members, so a save keeps the ones its form does not show
// (source, generated, a second school); the node assigns the envelope itself.
function contentOf(record) {
  const content = { ...record };
  for (const member of ["id", "kind", "origin", "version", "created", "updated", "author", "status"]) delete content[member];
  return content;
}

function signInFirst() {
  return { title: t("signin.title"), content: el("p", { role: "alert" }, t("error.signin"), " ", el("a", { href: `/inloggen?terug=${encodeURIComponent(location.pathname + location.search)}` }, t("nav.signin"))) };
}

// The schools an account may write for: its own (school editor), its region's (moderator), all.
async function writableSchools(account) {
  if (account.role === "school-editor") return [await get(`/api/v1/schools/${account.school}`)];
  const query = { limit: 200 };
  if (account.role === "moderator") query.region = account.region;
  return (await get("/api/v1/schools", query)).items;
}

function buttons(onSave) {
  const row = el("p", { class: "actions" });
  const draft = el("button", { type: "submit", value: "draft", class: mayPublish() ? "secondary" : "" }, t("edit.save_draft"));
  row.append(draft);
  if (mayPublish()) row.append(el("button", { type: "submit", value: "published" }, t("edit.publish")));
  row.addEventListener("click", (event) => {
    if (event.target.closest("button[type=submit]")) row.dataset.choice = event.target.closest("button").value;
  });
  row.choice = () => row.dataset.choice || "draft";
  row.busy = (busy) => { for (const b of row.querySelectorAll("button")) b.disabled = busy; };
  return row;
}

// Send the record; on success go to its page with a notice, on failure show why in the form.
async function save(form, row, { method, path, etag, body, pathOf }) {
  clearErrors(form);
  row.busy(true);
  try {
    const headers = etag ? { "If-Match": etag } : {};
    const answer = await request(method, path, { body, headers });
    flash(answer.data.status === "draft" ? t("edit.saved_draft") : t("edit.saved"));
    navigate(pathOf(answer.data));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    showErrors(form, error);
  } finally {
    row.busy(false);
  }
}

function scanEditor(scan) {
  const blocks = BOUWSTENEN.map((block, index) => el("fieldset", { class: "scan-block" },
    el("legend", {}, `${index + 1}. ${label("bouwsteen", block)}`),
    ["innovatieteam", "omgeving"].map((level) => {
      const value = (scan && scan[block] && scan[block][level]) || {};
      const score = field({ path: `scan.${block}.${level}.score`, label: `${t(`level.${level}`)}: score`, input: "select",
        options: [["", t("scan.unscored")], ...[1, 2, 3, 4, 5].map((n) => [String(n), t("scan.score", { score: n })])],
        value: Number.isInteger(value.score) ? String(value.score) : "" });
      const note = field({ path: `scan.${block}.${level}.note`, label: `${t(`level.${level}`)}: ${t("edit.note")}`, input: "textarea", rows: 2, value: value.note || "" });
      return el("div", { class: "scan-level", "data-block": block, "data-level": level }, score, note);
    })));
  const box = el("fieldset", { class: "scan-editor", "data-path": "scan" }, el("legend", {}, t("edit.scan")), el("p", { class: "hint" }, t("edit.scan.hint")), blocks);
  box.value = () => {
    const out = {};
    for (const level of box.querySelectorAll(".scan-level")) {
      const [scoreWrap, noteWrap] = level.querySelectorAll(".field");
      const score = scoreWrap.input.value;
      const note = textValue(noteWrap);
      if (score === "" && !note) continue;
      const part = {};
      part.score = score === "" ? null : Number(score);
      if (note) part.note = note;
      (out[level.dataset.block] ||= {})[level.dataset.level] = part;
    }
    return Object.keys(out).length ? out : null;
  };
  return box;
}

// Existing cases like the one being written, so a school sees a duplicate before submitting.
// Line breaks are sent as spaces: only the words count, and a %0A in the query string makes the
// node's HTTP layer lose the parameters after it (noted for a fix in the HTTP layer).
function similarPanel(ownId) {
  const list = el("ul", { class: "cards compact" });
  const panel = el("aside", { class: "similar", "aria-labelledby": "h-similar-edit", hidden: true },
    el("h2", { id: "h-similar-edit" }, t("edit.similar")), el("p", { class: "hint" }, t("edit.similar.hint")), list);
  let timer = null;
  let controller = null;
  panel.update = (text) => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (controller) controller.abort();
      if (text.trim().length < 12) { panel.hidden = true; return; }
      controller = new AbortController();
      try {
        const data = (await request("GET", "/api/v1/search", { query: { like: text.replace(/\s+/g, " ").slice(0, 8000), kind: "case", limit: 5 }, signal: controller.signal })).data;
        const hits = data.hits.filter((h) => h.id !== ownId);
        list.replaceChildren(...hits.map((h) => card(h.record || h, { headingLevel: 3 })));
        panel.hidden = hits.length === 0;
      } catch (_) { /* a hint only */ }
    }, 350);
  };
  return panel;
}

export async function editCasePage(ctx) {
  const account = currentAccount();
  if (!account) return signInFirst();
  const id = ctx.params[0] || null;
  let record = {}, etag = null;
  if (id) {
    const answer = await request("GET", `/api/v1/cases/${id}`);
    record = answer.data; etag = answer.etag;
  }
  const schools = await writableSchools(account);
  const f = {
    title: field({ path: "title", label: t("edit.title"), value: record.title, required: true }),
    schools: field({ path: "schools", label: t("edit.school"), input: "select", required: true,
      options: schools.map((s) => [s.id, `${s.name} (${s.place})`]), value: (record.schools || [])[0] || ctx.query.get("school") || schools[0]?.id }),
    summary: field({ path: "summary", label: t("edit.summary"), input: "textarea", value: record.summary, required: true }),
    question: field({ path: "question", label: t("edit.question"), input: "textarea", rows: 3, value: record.question }),
    goal: field({ path: "goal", label: t("edit.goal"), input: "textarea", rows: 3, value: record.goal }),
    target_group: field({ path: "target_group", label: t("edit.target_group"), value: record.target_group }),
    team: field({ path: "team", label: t("edit.team"), input: "textarea", rows: 2, value: record.team }),
    themes: field({ path: "themes", label: t("edit.themes"), hint: t("edit.themes.hint"), value: (record.themes || []).join(", ") }),
    phase: field({ path: "phase", label: t("edit.phase"), input: "select", required: true, options: [["", "—"], ...PHASES.map((p) => [p, label("phase", p)])], value: record.phase }),
    sector: field({ path: "sector", label: t("case.sector"), input: "select", options: [["", "—"], ...SECTORS.map((s) => [s, label("sector", s)])], value: record.sector || schools.find((s) => s.id === (record.schools || [])[0])?.sector }),
    lessons_learned: field({ path: "lessons_learned", label: t("edit.lessons_learned"), input: "textarea", value: record.lessons_learned }),
    licence: field({ path: "licence", label: t("edit.licence"), input: "select", options: LICENCES.map((l) => [l, l]), value: record.licence || "CC-BY-4.0" }),
    contact: field({ path: "contact", label: t("edit.contact"), value: record.contact }),
  };
  const scan = scanEditor(record.scan);
  const similar = similarPanel(id);
  const row = buttons();
  const form = el("form", { class: "record-form", novalidate: true }, formSummary(),
    f.title, f.schools, f.summary, f.question, f.goal, f.target_group, f.team, f.themes, f.phase, f.sector, scan, f.lessons_learned, f.licence, f.contact, row);
  const watch = () => similar.update(`${f.title.input.value}\n${f.summary.input.value}`);
  f.title.input.addEventListener("input", watch);
  f.summary.input.addEventListener("input", watch);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = {
      ...contentOf(record),
      title: textValue(f.title), schools: f.schools.input.value ? [f.schools.input.value] : [], summary: textValue(f.summary),
      question: textValue(f.question), goal: textValue(f.goal), target_group: textValue(f.target_group), team: textValue(f.team),
      themes: themeList(f.themes.input.value), phase: f.phase.input.value || null, sector: f.sector.input.value || null,
      scan: scan.value(), lessons_learned: textValue(f.lessons_learned), licence: f.licence.input.value, contact: textValue(f.contact),
    };
    if (record.schools && record.schools.length > 1) body.schools = [body.schools[0], ...record.schools.filter((s) => s !== body.schools[0])];
    if (!body.themes.length) body.themes = null;
    if (mayPublish() || !id) body.status = row.choice();
    save(form, row, { method: id ? "PUT" : "POST", path: id ? `/api/v1/cases/${id}` : "/api/v1/cases", etag, body, pathOf: (r) => `/voorbeelden/${r.id}` });
  });
  if (id) watch();
  return { title: id ? t("edit.edit_case") : t("edit.new_case"), content: el("div", { class: "edit-layout" }, form, similar) };
}

export async function editLessonPage(ctx) {
  const account = currentAccount();
  if (!account) return signInFirst();
  const id = ctx.params[0] || null;
  let record = {}, etag = null;
  if (id) {
    const answer = await request("GET", `/api/v1/lessons/${id}`);
    record = answer.data; etag = answer.etag;
  }
  const caseId = record.case || ctx.query.get("voorbeeld") || "";
  const preset = caseId ? await get(`/api/v1/cases/${caseId}`).catch(() => null) : null;
  const schools = await writableSchools(account);
  const schoolId = record.school || (preset && preset.schools.find((s) => schools.some((w) => w.id === s))) || schools[0]?.id;
  const cases = schoolId ? (await get("/api/v1/cases", { school: schoolId, limit: 200 })).items : [];
  if (preset && !cases.some((c) => c.id === preset.id)) cases.unshift(preset);
  const f = {
    title: field({ path: "title", label: t("edit.title"), value: record.title, required: true }),
    school: field({ path: "school", label: t("edit.school"), input: "select", required: true, options: schools.map((s) => [s.id, `${s.name} (${s.place})`]), value: schoolId }),
    case: field({ path: "case", label: t("edit.case"), input: "select", options: [["", t("edit.case.none")], ...cases.map((c) => [c.id, c.title])], value: caseId }),
    body: field({ path: "body", label: t("edit.body"), input: "textarea", rows: 8, value: record.body, required: true }),
    themes: field({ path: "themes", label: t("edit.themes"), hint: t("edit.themes.hint"), value: (record.themes || []).join(", ") }),
  };
  const blocks = checkboxes("bouwstenen", t("lesson.bouwstenen"), BOUWSTENEN.map((b, i) => [b, `${i + 1}. ${label("bouwsteen", b)}`]), record.bouwstenen || []);
  const principles = checkboxes("principles", t("lesson.principles"), PRINCIPLES.map((p) => [String(p), `${p}. ${label("principle", p)}`]), record.principles || []);
  const row = buttons();
  const form = el("form", { class: "record-form", novalidate: true }, formSummary(), f.title, f.school, f.case, f.body, blocks, principles, f.themes, row);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const themes = themeList(f.themes.input.value);
    const body = {
      ...contentOf(record),
      title: textValue(f.title), school: f.school.input.value, case: f.case.input.value || null, body: textValue(f.body),
      bouwstenen: blocks.values().length ? blocks.values() : null,
      principles: principles.values().length ? principles.values().map(Number) : null,
      themes: themes.length ? themes : null,
    };
    if (mayPublish() || !id) body.status = row.choice();
    save(form, row, { method: id ? "PUT" : "POST", path: id ? `/api/v1/lessons/${id}` : "/api/v1/lessons", etag, body, pathOf: (r) => `/lessen/${r.id}` });
  });
  return { title: id ? record.title : t("edit.new_lesson"), content: form };
}

export async function editPersonPage(ctx) {
  const account = currentAccount();
  if (!account) return signInFirst();
  const id = ctx.params[0];
  const answer = await request("GET", `/api/v1/people/${id}`);
  const record = answer.data;
  const f = {
    name: field({ path: "name", label: t("edit.name"), value: record.name, required: true }),
    place: field({ path: "place", label: t("edit.place"), value: record.place }),
    themes: field({ path: "themes", label: t("person.themes"), hint: t("edit.themes.hint"), value: (record.themes || []).join(", ") }),
    bio: field({ path: "bio", label: t("edit.bio"), input: "textarea", rows: 6, value: record.bio }),
    availability: field({ path: "availability", label: t("edit.availability"), input: "select", options: [["", "—"], ...AVAILABILITY.map((a) => [a, label("availability", a)])], value: record.availability }),
    contact: field({ path: "contact", label: t("person.contact"), value: record.contact }),
    email: field({ path: "email", label: t("person.email"), type: "email", value: record.email }),
  };
  const row = buttons();
  const form = el("form", { class: "record-form", novalidate: true }, formSummary(), f.name, f.place, f.themes, f.bio, f.availability, f.contact, f.email, row);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const themes = themeList(f.themes.input.value);
    // Members the form does not show are sent back as they are, so a save never drops them.
    const body = { ...contentOf(record), name: textValue(f.name), place: textValue(f.place), themes: themes.length ? themes : null, bio: textValue(f.bio),
      availability: f.availability.input.value || null, contact: textValue(f.contact), email: textValue(f.email) };
    if (mayPublish()) body.status = row.choice();
    save(form, row, { method: "PUT", path: `/api/v1/people/${id}`, etag: answer.etag, body, pathOf: (r) => `/brigadiers/${r.id}` });
  });
  return { title: t("edit.edit_person"), content: form };
}
