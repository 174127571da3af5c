// A bezoekverslag (visit note): what a brigadier saw, discussed and advised at a school, and the
// form they write it with. A note belongs to its brigadier: they write and correct it, always as
// a draft that the school visited can already read; a moderator of the school's region publishes
// it. The form offers the school's help requests and cases to link the visit to.

import { el } from "../dom.js";
import { get, nameOf, request, ApiError } from "../api.js";
import { BOUWSTENEN, formatDate, formatDay, label, t } from "../i18n.js";
import { checkboxes, clearErrors, field, formSummary, showErrors, textValue, themeList } from "../forms.js";
import { facts, later, paragraphs, schoolLink } from "../records.js";
import { currentAccount, mayPublish } from "../session.js";
import { live, nodeName, flash } from "../app.js";
import { navigate } from "../router.js";

// Whether the signed-in account may change this note (docs/roles.md): its brigadier, or an admin.
export function mayEditVisit(record) {
  const account = currentAccount();
  if (!account) return false;
  return account.role === "admin" || (account.role === "brigadier" && record.brigadier === account.person);
}

// Whether the account may start a new note: brigadiers with a profile, and admins.
export function mayWriteVisit() {
  const account = currentAccount();
  return Boolean(account && (account.role === "admin" || (account.role === "brigadier" && account.person)));
}

function linkTo(path, collection, id) {
  return id ? el("a", { href: `/${path}/${id}` }, later(nameOf(collection, id))) : null;
}

export async function visitPage(ctx) {
  const id = ctx.params[0];
  const record = await get(`/api/v1/visits/${id}`);
  if (record.status === "deleted") return { title: t("error.title"), content: el("p", { role: "alert" }, t("error.gone")) };
  ctx.onLeave(live.subscribe({ id: [id] }, () => navigate(location.pathname, { replace: true })));
  const draft = record.status === "draft";
  return {
    title: record.title,
    content: [
      el("p", { class: "meta" }, label("kind", "visit"), " · ", formatDay(record.date),
        draft ? el("span", { class: "badge draft" }, label("status", "draft")) : null),
      draft && mayEditVisit(record) ? el("p", { class: "notice" }, t("visit.draft_note")) : null,
      mayEditVisit(record) ? el("p", { class: "actions" }, el("a", { class: "button", href: `/bezoeken/${id}/bewerken` }, t("visit.edit"))) : null,
      facts([
        [t("case.schools"), schoolLink(record.school)],
        [t("visit.date"), formatDay(record.date)],
        [t("visit.brigadier"), linkTo("brigadiers", "people", record.brigadier)],
        [t("case.region"), record.region ? later(nameOf("regions", record.region)) : null],
      ]),
      el("section", { "aria-labelledby": "h-notes" }, el("h2", { id: "h-notes" }, t("visit.notes")), paragraphs(record.notes)),
      record.advice ? el("section", { "aria-labelledby": "h-advice" }, el("h2", { id: "h-advice" }, t("visit.advice")), paragraphs(record.advice)) : null,
      record.follow_up ? el("section", { "aria-labelledby": "h-follow-up" }, el("h2", { id: "h-follow-up" }, t("visit.follow_up")), paragraphs(record.follow_up)) : null,
      facts([
        [t("visit.request"), linkTo("hulpvragen", "requests", record.request)],
        [t("visit.case"), linkTo("voorbeelden", "cases", record.case)],
        [t("visit.bouwstenen"), (record.bouwstenen || []).map((b) => label("bouwsteen", b)).join("; ")],
        [t("case.themes"), (record.themes || []).map((theme, i) => [i ? ", " : "", el("a", { href: `/zoeken?theme=${encodeURIComponent(theme)}` }, theme)])],
        [t("case.origin"), later(nodeName(record.origin))],
        [t("case.updated"), `${formatDate(record.updated)} · ${t("case.version", { v: record.version })}`],
        [t("case.source"), record.source],
      ]),
    ],
  };
}

// The stored record's content members, so a save keeps those the form does not show.
function contentOf(record) {
  const content = { ...record };
  for (const member of ["id", "kind", "origin", "version", "created", "updated", "author", "status"]) delete content[member];
  return content;
}

// Replaces a select's options, keeping the chosen value when it is still offered.
function setOptions(select, options, value) {
  select.replaceChildren(...options.map(([v, text]) => el("option", { value: v, selected: String(v) === String(value ?? "") }, text)));
}

export async function editVisitPage(ctx) {
  const account = currentAccount();
  if (!account) {
    return { title: t("signin.title"), content: el("p", { role: "alert" }, t("error.signin"), " ",
      el("a", { href: `/inloggen?terug=${encodeURIComponent(location.pathname + location.search)}` }, t("nav.signin"))) };
  }
  const id = ctx.params[0] || null;
  let record = {}, etag = null;
  if (id) {
    const answer = await request("GET", `/api/v1/visits/${id}`);
    record = answer.data; etag = answer.etag;
  }
  if (id ? !mayEditVisit(record) : !mayWriteVisit()) {
    return { title: id ? t("edit.edit_visit") : t("edit.new_visit"), content: el("p", { role: "alert" }, t("visit.only_brigadiers")) };
  }
  // A visit started from a help request ("Bezoekverslag schrijven" there) is about its school.
  const presetRequest = record.request || ctx.query.get("hulpvraag") || "";
  const fromRequest = !id && presetRequest ? await get(`/api/v1/requests/${presetRequest}`).catch(() => null) : null;
  const schoolId = record.school || fromRequest?.school || ctx.query.get("school") || "";
  const [schools, people] = await Promise.all([
    get("/api/v1/schools", { limit: 200 }).then((page) => page.items),
    account.role === "admin" && !record.brigadier ? get("/api/v1/people", { limit: 200 }).then((page) => page.items) : [],
  ]);
  if (schoolId && !schools.some((s) => s.id === schoolId)) {
    const extra = await get(`/api/v1/schools/${schoolId}`).catch(() => null);
    if (extra) schools.unshift(extra);
  }
  const f = {
    title: field({ path: "title", label: t("edit.title"), value: record.title, required: true }),
    school: field({ path: "school", label: t("edit.visit.school"), input: "select", required: true,
      options: [["", "—"], ...schools.map((s) => [s.id, `${s.name} (${s.place})`])], value: schoolId }),
    date: field({ path: "date", label: t("edit.visit.date"), hint: t("edit.visit.date.hint"), type: "date", value: record.date || new Date().toISOString().slice(0, 10), required: true }),
    brigadier: people.length ? field({ path: "brigadier", label: t("edit.visit.brigadier"), input: "select", required: true,
      options: [["", "—"], ...people.map((p) => [p.id, p.name])], value: "" }) : null,
    notes: field({ path: "notes", label: t("edit.visit.notes"), input: "textarea", rows: 8, value: record.notes, required: true }),
    advice: field({ path: "advice", label: t("edit.visit.advice"), input: "textarea", rows: 5, value: record.advice }),
    follow_up: field({ path: "follow_up", label: t("edit.visit.follow_up"), input: "textarea", rows: 3, value: record.follow_up }),
    request: field({ path: "request", label: t("edit.visit.request"), input: "select", options: [["", t("edit.case.none")]], value: presetRequest }),
    case: field({ path: "case", label: t("edit.visit.case"), input: "select", options: [["", t("edit.case.none")]], value: record.case }),
    themes: field({ path: "themes", label: t("edit.themes"), hint: t("edit.themes.hint"), value: (record.themes || []).join(", ") }),
  };
  const blocks = checkboxes("bouwstenen", t("edit.visit.bouwstenen"), BOUWSTENEN.map((b, i) => [b, `${i + 1}. ${label("bouwsteen", b)}`]), record.bouwstenen || []);

  // The help requests and cases of the school chosen, offered to link the visit to.
  let controller = null;
  async function loadLinks(keep) {
    if (controller) controller.abort();
    const school = f.school.input.value;
    const none = [["", t("edit.case.none")]];
    if (!school) { setOptions(f.request.input, none, ""); setOptions(f.case.input, none, ""); return; }
    controller = new AbortController();
    const signal = controller.signal;
    try {
      const [requests, cases] = await Promise.all([
        request("GET", "/api/v1/requests", { query: { school, limit: 100 }, signal }).then((a) => a.data.items),
        request("GET", "/api/v1/cases", { query: { school, limit: 100 }, signal }).then((a) => a.data.items),
      ]);
      if (fromRequest && fromRequest.school === school && !requests.some((r) => r.id === fromRequest.id)) requests.unshift(fromRequest);
      setOptions(f.request.input, [...none, ...requests.map((r) => [r.id, r.title])], keep ? keep.request : "");
      setOptions(f.case.input, [...none, ...cases.map((c) => [c.id, c.title])], keep ? keep.case : "");
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }
  f.school.input.addEventListener("change", () => loadLinks(null));
  await loadLinks({ request: presetRequest, case: record.case || "" });

  const row = el("p", { class: "actions" });
  const save = el("button", { type: "submit", value: "draft" }, t("edit.save_draft"));
  row.append(save);
  if (mayPublish()) row.append(el("button", { type: "submit", value: "published", class: "secondary" }, t("edit.publish")));
  let choice = "draft";
  row.addEventListener("click", (event) => {
    const button = event.target.closest("button[type=submit]");
    if (button) choice = button.value;
  });
  const form = el("form", { class: "record-form", novalidate: true }, formSummary(),
    f.title, f.school, f.date, f.brigadier, f.notes, f.advice, f.follow_up, f.request, f.case, blocks, f.themes, row);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const themes = themeList(f.themes.input.value);
    const body = {
      ...contentOf(record),
      title: textValue(f.title), school: f.school.input.value || null, date: f.date.input.value || null,
      notes: textValue(f.notes), advice: textValue(f.advice), follow_up: textValue(f.follow_up),
      request: f.request.input.value || null, case: f.case.input.value || null,
      bouwstenen: blocks.values().length ? blocks.values() : null,
      themes: themes.length ? themes : null,
    };
    if (f.brigadier) body.brigadier = f.brigadier.input.value || null;
    // The region follows the school: a note moved to another school takes that school's region.
    if (record.school && body.school !== record.school) delete body.region;
    if (mayPublish() || !id) body.status = choice;
    clearErrors(form);
    for (const b of row.querySelectorAll("button")) b.disabled = true;
    try {
      const answer = await request(id ? "PUT" : "POST", id ? `/api/v1/visits/${id}` : "/api/v1/visits",
        { body, headers: etag ? { "If-Match": etag } : {} });
      flash(answer.data.status === "draft" ? t("edit.saved_draft") : t("edit.saved"));
      navigate(`/bezoeken/${answer.data.id}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, error);
    } finally {
      for (const b of row.querySelectorAll("button")) b.disabled = false;
    }
  });
  return { title: id ? t("edit.edit_visit") : t("edit.new_visit"), content: form };
}
