// Search: results update as you type, facets narrow them (AND across facets, OR within one),
// and the whole state lives in the URL, so a search can be shared and the back button works.
// Typing replaces the history entry; choosing a facet adds one.

import { el } from "../dom.js";
import { request } from "../api.js";
import { label, t } from "../i18n.js";
import { card } from "../records.js";
import { nodeInfo } from "../app.js";

export const FACETS = ["kind", "region", "origin", "sector", "phase", "bouwsteen", "theme", "principle", "school", "state", "availability"];
const SHOWN_VALUES = 8;

function facetValueLabel(facet, item) {
  if (facet === "origin") return nodeInfo && nodeInfo.id === item.value ? nodeInfo.name : item.label || item.value;
  if (facet === "region" || facet === "school" || facet === "theme") return item.label || item.value;
  return label(facet, item.value);
}

export function searchState(query) {
  const state = { q: query.get("q") || "", filters: {} };
  for (const facet of FACETS) {
    const values = query.getAll(facet).flatMap((v) => v.split(",")).filter(Boolean);
    if (values.length) state.filters[facet] = values;
  }
  return state;
}

function stateUrl(state) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  for (const facet of FACETS) for (const value of state.filters[facet] || []) params.append(facet, value);
  const text = params.toString();
  return `/zoeken${text ? `?${text}` : ""}`;
}

export async function searchPage(ctx) {
  const state = searchState(ctx.query);
  const input = el("input", { type: "search", id: "zoek-q", name: "q", value: state.q, autocomplete: "off", "aria-describedby": "zoek-hint", "aria-controls": "zoek-resultaten" });
  const summary = el("p", { class: "result-count", role: "status", id: "zoek-aantal" });
  const results = el("ol", { class: "cards results", id: "zoek-resultaten" });
  const more = el("button", { type: "button", class: "secondary", hidden: true }, t("search.more"));
  const facetBox = el("div", { class: "facets", id: "zoek-facetten" });
  let controller = null;
  let next = null;
  let typedAt = null;

  async function run({ append = false } = {}) {
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    const query = { q: state.q, limit: 20, ...Object.fromEntries(Object.entries(state.filters).map(([k, v]) => [k, v.join(",")])) };
    if (append && next) query.cursor = next;
    const started = typedAt;
    let data;
    try {
      data = (await request("GET", "/api/v1/search", { query, signal: mine.signal })).data;
    } catch (error) {
      if (error.name === "AbortError" || mine.signal.aborted) return;
      summary.textContent = error.message;
      results.replaceChildren();
      more.hidden = true;
      return;
    }
    // A newer keystroke may have started its own search while this answer was on its way.
    if (!ctx.current() || mine.signal.aborted || !data) return;
    next = data.next;
    const items = data.hits.map((hit) => card(hit.record || hit, { snippetHtml: hit.snippet, headingLevel: 3 }));
    if (append) results.append(...items);
    else results.replaceChildren(...items);
    summary.replaceChildren(data.total === 0 ? t("search.none") : data.total === 1 ? t("search.result1") : t("search.results", { n: data.total }),
      el("span", { class: "took" }, ` (${t("search.took", { ms: Math.max(1, Math.round(data.took_ms)) })})`));
    more.hidden = !next;
    if (!append) renderFacets(data.facets);
    results.dataset.query = state.q;
    if (started !== null) {
      // Keystroke → results on screen, for the browser test's performance figure.
      requestAnimationFrame(() => performance.measure("olievlek:search", { start: started, end: performance.now(), detail: { q: state.q } }));
      typedAt = null;
    }
  }

  function renderFacets(facets) {
    const groups = [];
    for (const facet of FACETS) {
      const values = (facets[facet] || []).filter((v) => v.count > 0 || (state.filters[facet] || []).includes(v.value));
      const chosen = state.filters[facet] || [];
      for (const value of chosen) if (!values.some((v) => v.value === value)) values.push({ value, count: 0 });
      if (!values.length) continue;
      const shown = values.filter((v, i) => i < SHOWN_VALUES || chosen.includes(v.value));
      groups.push(el("fieldset", { class: "facet", "data-facet": facet },
        el("legend", {}, t(`facet.${facet}`)),
        shown.map((item) => {
          const id = `f-${facet}-${item.value}`.replace(/[^A-Za-z0-9_-]/g, "_");
          const box = el("input", { type: "checkbox", id, name: facet, value: item.value, checked: chosen.includes(item.value) });
          box.addEventListener("change", () => {
            const set = new Set(state.filters[facet] || []);
            if (box.checked) set.add(item.value); else set.delete(item.value);
            if (set.size) state.filters[facet] = [...set]; else delete state.filters[facet];
            history.pushState(null, "", stateUrl(state));
            run();
          });
          return el("div", { class: "facet-value" }, box, el("label", { for: id }, facetValueLabel(facet, item), el("span", { class: "count" }, ` (${item.count})`)));
        })));
    }
    if (Object.keys(state.filters).length) {
      groups.push(el("button", { type: "button", class: "secondary", onclick: () => {
        state.filters = {};
        history.pushState(null, "", stateUrl(state));
        run();
      } }, t("search.clear")));
    }
    facetBox.replaceChildren(el("h2", { class: "facets-title" }, t("search.filters")), ...groups);
  }

  input.addEventListener("input", (event) => {
    typedAt = event.timeStamp;
    state.q = input.value;
    history.replaceState(null, "", stateUrl(state));
    run();
  });
  more.addEventListener("click", () => run({ append: true }));
  ctx.onLeave(() => controller && controller.abort());
  await run();
  return {
    title: t("search.title"),
    content: el("div", { class: "search-page" },
      el("form", { role: "search", class: "search-form", onsubmit: (e) => { e.preventDefault(); } },
        el("label", { for: "zoek-q" }, t("search.label")),
        el("div", { class: "search-row" }, input),
        el("p", { id: "zoek-hint", class: "hint" }, t("search.hint"))),
      el("div", { class: "search-layout" },
        facetBox,
        el("section", { "aria-labelledby": "zoek-aantal", class: "search-results" }, summary, results, more))),
    after: () => { if (!ctx.query.has("q") && !Object.keys(state.filters).length) input.focus(); },
  };
}

