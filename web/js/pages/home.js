// Home: the search box, then what is new — cases and lessons arrive live, without a reload.

import { el } from "../dom.js";
import { get } from "../api.js";
import { t } from "../i18n.js";
import { card } from "../records.js";
import { live } from "../app.js";
import { navigate } from "../router.js";

function searchForm() {
  const input = el("input", { type: "search", id: "home-q", name: "q", autocomplete: "off", "aria-describedby": "home-q-hint" });
  const form = el("form", { role: "search", class: "search-form", action: "/zoeken" },
    el("label", { for: "home-q" }, t("home.search.label")),
    el("div", { class: "search-row" }, input, el("button", { type: "submit" }, t("home.search.button"))),
    el("p", { id: "home-q-hint", class: "hint" }, t("search.hint")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(`/zoeken?q=${encodeURIComponent(input.value.trim())}`);
  });
  return form;
}

// A list that takes live changes: a published record moves to the top (marked new or updated),
// one that was deleted or taken back to draft leaves.
function liveList(records, id, limit) {
  const list = el("ul", { class: "cards", id });
  for (const record of records) list.append(card(record, { showDate: true }));
  list.take = (record) => {
    const old = list.querySelector(`[data-id="${record.id}"]`);
    if (old) old.remove();
    if (record.status !== "published" || record.hidden) return;
    list.prepend(card(record, { showDate: true, mark: t(old || record.version > 1 ? "home.updated" : "home.new") }));
    while (list.children.length > limit) list.lastElementChild.remove();
  };
  return list;
}

export async function homePage(ctx) {
  const [cases, lessons, requests] = await Promise.all([
    get("/api/v1/cases", { limit: 9 }),
    get("/api/v1/lessons", { limit: 6 }),
    get("/api/v1/requests", { state: "open", limit: 4 }),
  ]);
  const caseList = liveList(cases.items, "nieuwe-voorbeelden", 9);
  const lessonList = liveList(lessons.items, "nieuwe-lessen", 6);
  const status = el("p", { class: "live-status", role: "status" }, t("live.connecting"));
  ctx.onLeave(live.subscribe({ kind: ["case", "lesson"] }, (record) => {
    if (record.kind === "case") caseList.take(record);
    else if (record.kind === "lesson") lessonList.take(record);
  }, () => { if (ctx.current()) navigate(location.pathname + location.search, { replace: true }); }));
  ctx.onLeave(live.watchStatus((state) => { status.textContent = t(state === "live" ? "live.on" : state === "offline" ? "live.off" : "live.connecting"); }));
  return {
    title: t("home.title"),
    content: [
      el("p", { class: "lead" }, t("home.intro")),
      searchForm(),
      status,
      el("section", { "aria-labelledby": "h-cases" }, el("h2", { id: "h-cases" }, t("home.cases")), caseList),
      el("section", { "aria-labelledby": "h-lessons" }, el("h2", { id: "h-lessons" }, t("home.lessons")), lessonList),
      requests.items.length ? el("section", { "aria-labelledby": "h-requests" }, el("h2", { id: "h-requests" }, t("home.requests")),
        el("ul", { class: "cards" }, requests.items.map((r) => card(r)))) : null,
    ],
  };
}
