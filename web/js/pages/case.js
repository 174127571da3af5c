// A case ("mooi voorbeeld"): what it is, the question and goal, the team, its phase and themes,
// the bouwstenen scan, the lessons learned by schools, and where it comes from. Changes to the
// case and new lessons arrive live.

import { el } from "../dom.js";
import { get, nameOf } from "../api.js";
import { formatDate, label, t } from "../i18n.js";
import { card, facts, later, paragraphs, schoolLink } from "../records.js";
import { scanView } from "../scan.js";
import { live, nodeName } from "../app.js";
import { mayEditCase, currentAccount } from "../session.js";
import { navigate } from "../router.js";

const LICENCE_NAMES = { "CC-BY-4.0": "CC BY 4.0", "CC-BY-SA-4.0": "CC BY-SA 4.0", "CC0-1.0": "CC0 1.0", "alle-rechten-voorbehouden": "Alle rechten voorbehouden" };
const LICENCE_URLS = { "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/deed.nl", "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/deed.nl", "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/deed.nl" };

function licence(value) {
  if (!value) return null;
  const name = LICENCE_NAMES[value] || value;
  return LICENCE_URLS[value] ? el("a", { href: LICENCE_URLS[value], rel: "license" }, name) : name;
}

export async function casePage(ctx) {
  const id = ctx.params[0];
  const [record, lessons, similar] = await Promise.all([
    get(`/api/v1/cases/${id}`),
    get("/api/v1/lessons", { case: id, limit: 50 }),
    get(`/api/v1/cases/${id}/similar`, { limit: 4 }).catch(() => ({ hits: [] })),
  ]);
  if (record.status === "deleted") return { title: t("error.title"), content: el("p", { role: "alert" }, t("error.gone")) };
  const lessonList = el("ul", { class: "cards", id: "lessen-bij-voorbeeld" }, lessons.items.map((l) => card(l)));
  const noLessons = el("p", { hidden: lessons.items.length > 0 }, t("case.no_lessons"));
  const account = currentAccount();

  ctx.onLeave(live.subscribe({ kind: ["case", "lesson"] }, (changed) => {
    if (changed.id === id && changed.kind === "case") {
      navigate(location.pathname, { replace: true });
      return;
    }
    if (changed.kind !== "lesson" || (changed.case !== id && !lessonList.querySelector(`[data-id="${changed.id}"]`))) return;
    lessonList.querySelector(`[data-id="${changed.id}"]`)?.remove();
    if (changed.status === "published" && changed.case === id) lessonList.prepend(card(changed, { mark: t("home.new") }));
    noLessons.hidden = lessonList.children.length > 0;
  }));

  const actions = el("p", { class: "actions" },
    mayEditCase(record) ? el("a", { class: "button", href: `/voorbeelden/${id}/bewerken` }, t("case.edit")) : null,
    account && mayEditCase(record) ? el("a", { class: "button secondary", href: `/lessen/nieuw?voorbeeld=${id}` }, t("case.add_lesson")) : null);

  const content = [
    el("p", { class: "meta" }, label("phase", record.phase), record.status === "draft" ? el("span", { class: "badge draft" }, label("status", "draft")) : null,
      record.generated ? el("span", { class: "badge generated" }, t("case.generated")) : null),
    actions,
    el("div", { class: "summary" }, paragraphs(record.summary)),
    facts([
      [t("case.schools"), (record.schools || []).map((s, i) => [i ? ", " : "", schoolLink(s)])],
      [t("case.region"), record.region ? later(nameOf("regions", record.region)) : null],
      [t("case.sector"), record.sector ? label("sector", record.sector) : null],
      [t("case.phase"), label("phase", record.phase)],
      [t("case.question"), record.question],
      [t("case.goal"), record.goal],
      [t("case.target_group"), record.target_group],
      [t("case.team"), record.team],
      [t("case.themes"), (record.themes || []).map((theme, i) => [i ? ", " : "", el("a", { href: `/zoeken?theme=${encodeURIComponent(theme)}` }, theme)])],
    ]),
    el("section", { "aria-labelledby": "h-scan" }, el("h2", { id: "h-scan" }, t("scan.title")), el("p", { class: "hint" }, t("scan.intro")), scanView(record.scan)),
    record.lessons_learned ? el("section", { "aria-labelledby": "h-ll" }, el("h2", { id: "h-ll" }, t("case.lessons_learned")), paragraphs(record.lessons_learned)) : null,
    el("section", { "aria-labelledby": "h-lessons" }, el("h2", { id: "h-lessons" }, t("case.lessons")), lessonList, noLessons),
    similar.hits.length ? el("section", { "aria-labelledby": "h-similar" }, el("h2", { id: "h-similar" }, t("case.similar")),
      el("ul", { class: "cards" }, similar.hits.map((h) => card(h.record || h)))) : null,
    facts([
      [t("case.licence"), licence(record.licence)],
      [t("case.contact"), record.contact],
      [t("case.origin"), later(nodeName(record.origin))],
      [t("case.updated"), `${formatDate(record.updated)} · ${t("case.version", { v: record.version })}`],
      [t("case.source"), record.source],
    ]),
  ];
  return { title: record.title, content };
}

// A lesson learned, with the case it belongs to.
export async function lessonPage(ctx) {
  const record = await get(`/api/v1/lessons/${ctx.params[0]}`);
  if (record.status === "deleted") return { title: t("error.title"), content: el("p", { role: "alert" }, t("error.gone")) };
  return {
    title: record.title,
    content: [
      el("p", { class: "meta" }, label("kind", "lesson"), record.status === "draft" ? el("span", { class: "badge draft" }, label("status", "draft")) : null),
      el("div", { class: "summary" }, paragraphs(record.body)),
      facts([
        [t("case.schools"), schoolLink(record.school)],
        [t("lesson.case"), record.case ? el("a", { href: `/voorbeelden/${record.case}` }, later(nameOf("cases", record.case))) : null],
        [t("lesson.bouwstenen"), (record.bouwstenen || []).map((b) => label("bouwsteen", b)).join("; ")],
        [t("lesson.principles"), (record.principles || []).map((p) => `${p}. ${label("principle", p)}`).join("; ")],
        [t("case.themes"), (record.themes || []).join(", ")],
        [t("case.origin"), later(nodeName(record.origin))],
        [t("case.updated"), `${formatDate(record.updated)} · ${t("case.version", { v: record.version })}`],
        [t("case.source"), record.source],
      ]),
    ],
  };
}

