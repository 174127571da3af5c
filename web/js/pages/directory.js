// Schools, brigadiers and help requests: directories with filters, and one page per record.
// Directories use the search endpoint (kind + facets), so their filters count like search's.

import { el } from "../dom.js";
import { get, nameOf, request } from "../api.js";
import { label, t } from "../i18n.js";
import { card, facts, later, paragraphs, schoolLink } from "../records.js";
import { currentAccount, isBrigadier } from "../session.js";
import { live } from "../app.js";
import { mayWriteVisit } from "./visit.js";
import { navigate } from "../router.js";

// A filterable directory of one kind: a text box and a few facets, state kept in the URL.
async function directory(ctx, { kind, title, intro, facets }) {
  const q = ctx.query.get("q") || "";
  const filters = Object.fromEntries(facets.map((f) => [f, ctx.query.getAll(f)]).filter(([, v]) => v.length));
  const input = el("input", { type: "search", id: "dir-q", name: "q", value: q, autocomplete: "off" });
  const list = el("ul", { class: "cards", id: "lijst" });
  const count = el("p", { role: "status", class: "result-count" });
  const facetBox = el("div", { class: "facets inline" });
  let controller = null;

  const url = () => {
    const params = new URLSearchParams();
    if (input.value) params.set("q", input.value);
    for (const [f, values] of Object.entries(filters)) for (const v of values) params.append(f, v);
    const text = params.toString();
    return `${location.pathname}${text ? `?${text}` : ""}`;
  };

  async function run() {
    if (controller) controller.abort();
    controller = new AbortController();
    const query = { kind, q: input.value, limit: 100, ...Object.fromEntries(Object.entries(filters).map(([k, v]) => [k, v.join(",")])) };
    let data;
    try {
      data = (await request("GET", "/api/v1/search", { query, signal: controller.signal })).data;
    } catch (error) {
      if (error.name !== "AbortError") count.textContent = error.message;
      return;
    }
    if (!ctx.current()) return;
    list.replaceChildren(...data.hits.map((hit) => card(hit.record || hit, { snippetHtml: input.value ? hit.snippet : null })));
    count.textContent = data.total === 0 ? t("search.none") : data.total === 1 ? t("search.result1") : t("search.results", { n: data.total });
    facetBox.replaceChildren(...facets.map((facet) => {
      const values = data.facets[facet] || [];
      if (!values.length && !filters[facet]) return null;
      const id = `dir-${facet}`;
      const select = el("select", { id, name: facet },
        el("option", { value: "" }, "—"),
        values.map((v) => el("option", { value: v.value, selected: (filters[facet] || []).includes(v.value) },
          `${facet === "region" || facet === "school" || facet === "theme" ? v.label || v.value : label(facet, v.value)} (${v.count})`)));
      select.addEventListener("change", () => {
        if (select.value) filters[facet] = [select.value]; else delete filters[facet];
        history.pushState(null, "", url());
        run();
      });
      return el("div", { class: "field" }, el("label", { for: id }, t(`facet.${facet}`)), select);
    }));
  }

  input.addEventListener("input", () => { history.replaceState(null, "", url()); run(); });
  ctx.onLeave(() => controller && controller.abort());
  await run();
  return {
    title,
    content: [
      el("p", { class: "lead" }, intro),
      el("form", { role: "search", class: "search-form", onsubmit: (e) => e.preventDefault() },
        el("label", { for: "dir-q" }, t("people.filter")), el("div", { class: "search-row" }, input)),
      facetBox, count, list,
    ],
  };
}

export const schoolsPage = (ctx) => directory(ctx, { kind: "school", title: t("schools.title"), intro: t("schools.intro"), facets: ["sector", "region"] });
export const peoplePage = (ctx) => directory(ctx, { kind: "person", title: t("people.title"), intro: t("people.intro"), facets: ["sector", "region", "availability", "theme"] });
export const requestsPage = (ctx) => directory(ctx, { kind: "request", title: t("requests.title"), intro: t("requests.intro"), facets: ["state", "sector", "region", "theme"] });

function section(id, heading, records, empty = t("school.none")) {
  return el("section", { "aria-labelledby": id }, el("h2", { id }, heading),
    records.length ? el("ul", { class: "cards" }, records.map((r) => card(r))) : el("p", {}, empty));
}

export async function schoolPage(ctx) {
  const id = ctx.params[0];
  const [school, cases, lessons, requests, people, visits] = await Promise.all([
    get(`/api/v1/schools/${id}`),
    get("/api/v1/cases", { school: id, limit: 50 }),
    get("/api/v1/lessons", { school: id, limit: 50 }),
    get("/api/v1/requests", { school: id, limit: 50 }),
    get("/api/v1/people", { school: id, limit: 50 }),
    get("/api/v1/visits", { school: id, limit: 50 }),
  ]);
  const write = mayWriteVisit() ? el("p", { class: "actions" }, el("a", { class: "button secondary", href: `/bezoeken/nieuw?school=${id}` }, t("visit.write"))) : null;
  return {
    title: school.name,
    content: [
      facts([
        [t("school.place"), [school.place, school.municipality && school.municipality !== school.place ? ` (${school.municipality})` : ""]],
        [t("case.sector"), label("sector", school.sector)],
        [t("case.region"), school.region ? later(nameOf("regions", school.region)) : null],
        [t("school.brin"), `${school.brin}${school.vestiging ? ` ${school.vestiging}` : ""}`],
        [t("school.denomination"), school.denomination],
        [t("school.website"), school.website ? el("a", { href: school.website, rel: "noopener" }, school.website) : null],
      ]),
      section("h-cases", t("school.cases"), cases.items),
      section("h-lessons", t("school.lessons"), lessons.items),
      section("h-requests", t("school.requests"), requests.items),
      el("section", { "aria-labelledby": "h-visits", id: "bezoeken" }, el("h2", { id: "h-visits" }, t("school.visits")), write,
        visits.items.length ? el("ul", { class: "cards" }, visits.items.map((r) => card(r))) : el("p", {}, t("school.none"))),
      people.items.length ? section("h-people", t("school.people"), people.items) : null,
    ],
  };
}

export async function personPage(ctx) {
  const id = ctx.params[0];
  const [person, taken, visits] = await Promise.all([
    get(`/api/v1/people/${id}`),
    get("/api/v1/requests", { person: id, limit: 20 }).catch(() => ({ items: [] })),
    get("/api/v1/visits", { person: id, limit: 20 }).catch(() => ({ items: [] })),
  ]);
  const account = currentAccount();
  const own = account && (account.person === id || account.role === "admin");
  return {
    title: person.name,
    content: [
      el("p", { class: "meta" }, label("kind", "person"), person.status === "draft" ? el("span", { class: "badge draft" }, label("status", "draft")) : null),
      own ? el("p", { class: "actions" }, el("a", { class: "button", href: `/brigadiers/${id}/bewerken` }, t("person.edit"))) : null,
      person.bio ? el("div", { class: "summary" }, paragraphs(person.bio)) : null,
      facts([
        [t("person.themes"), (person.themes || []).map((theme, i) => [i ? ", " : "", el("a", { href: `/brigadiers?theme=${encodeURIComponent(theme)}` }, theme)])],
        [t("person.school"), person.school ? schoolLink(person.school) : null],
        [t("person.place"), person.place],
        [t("case.sector"), person.sector ? label("sector", person.sector) : null],
        [t("case.region"), person.region ? later(nameOf("regions", person.region)) : null],
        [t("person.availability"), person.availability ? label("availability", person.availability) : null],
        [t("person.contact"), person.contact],
        [t("person.email"), person.email ? el("a", { href: `mailto:${person.email}` }, person.email) : null],
        [t("case.source"), person.source],
      ]),
      taken.items.length ? section("h-taken", t("person.taken"), taken.items) : null,
      visits.items.length ? section("h-visits", t("person.visits"), visits.items) : null,
    ],
  };
}

export async function requestPage(ctx) {
  const id = ctx.params[0];
  const [record, matches, visits] = await Promise.all([
    get(`/api/v1/requests/${id}`),
    get(`/api/v1/requests/${id}/matches`, { limit: 6 }).catch(() => ({ hits: [] })),
    get("/api/v1/visits", { request: id, limit: 20 }).catch(() => ({ items: [] })),
  ]);
  const account = currentAccount();
  const notice = el("p", { role: "status", class: "notice", hidden: true });
  const mayTake = isBrigadier() && record.status === "published" && record.state === "open";
  const take = el("button", { type: "button", id: "oppakken" }, t("request.take"));
  take.addEventListener("click", async () => {
    take.disabled = true;
    try {
      await request("POST", `/api/v1/requests/${id}/take`);
      navigate(location.pathname, { replace: true });
    } catch (error) {
      notice.hidden = false;
      notice.textContent = error.message;
      take.disabled = false;
    }
  });
  ctx.onLeave(live.subscribe({ id: [id] }, () => navigate(location.pathname, { replace: true })));
  return {
    title: record.title,
    content: [
      el("p", { class: "meta" }, label("kind", "request"), " · ", label("state", record.state), record.status === "draft" ? el("span", { class: "badge draft" }, label("status", "draft")) : null),
      el("div", { class: "summary" }, paragraphs(record.question)),
      facts([
        [t("case.schools"), schoolLink(record.school)],
        [t("case.region"), record.region ? later(nameOf("regions", record.region)) : null],
        [t("case.sector"), record.sector ? label("sector", record.sector) : null],
        [t("case.themes"), (record.themes || []).join(", ")],
        [t("request.state"), label("state", record.state)],
        [t("request.taken_by"), record.taken_by ? el("a", { href: `/brigadiers/${record.taken_by}` }, later(nameOf("people", record.taken_by))) : null],
      ]),
      account && account.person && record.taken_by === account.person ? el("p", { class: "notice" }, t("request.taken")) : null,
      mayTake ? el("p", { class: "actions" }, take) : null,
      account && account.person && record.taken_by === account.person && mayWriteVisit()
        ? el("p", { class: "actions" }, el("a", { class: "button secondary", href: `/bezoeken/nieuw?hulpvraag=${id}` }, t("visit.write"))) : null,
      notice,
      visits.items.length ? section("h-visits", t("request.visits"), visits.items) : null,
      el("section", { "aria-labelledby": "h-matches" }, el("h2", { id: "h-matches" }, t("request.matches")),
        matches.hits.length ? el("ul", { class: "cards" }, matches.hits.map((h) => card(h.record || h))) : el("p", {}, t("request.no_matches"))),
    ],
  };
}
