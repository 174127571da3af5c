// Olievlek's browsing pages: cases ("mooie voorbeelden") with their bouwstenen scan, schools,
// brigadiers and help requests, read from the node's API. Client-side routes; the node serves
// index.html for every path without a file, so links are shareable and the back button works.

const BOUWSTENEN = [
  ["doel", "Werken vanuit een gezamenlijk aanstekelijk doel"],
  ["talenten", "Bundelen van de aanwezige talenten en expertise"],
  ["proces", "Aandacht voor het samenwerkingsproces en de relatie"],
  ["houding", "Onderzoekende en waarderende houding van alle betrokkenen"],
  ["ruimte", "Mogelijkheid om samen te werken"],
  ["contact", "Contact met relevante betrokkenen"],
  ["delen", "Delen wat werkt"],
];
const FASEN = { adoptie: "Adoptie", implementatie: "Implementatie", institutionalisering: "Institutionalisering" };

const view = document.getElementById("weergave");
const title = document.getElementById("titel");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = `De server antwoordde ${response.status}.`;
    try {
      const problem = await response.json();
      if (problem.detail) detail = problem.detail;
    } catch (_) { /* not a problem document */ }
    throw new Error(detail);
  }
  return response.json();
}

function show(heading, ...content) {
  title.textContent = heading;
  document.title = `${heading} — Olievlek`;
  view.replaceChildren(...content);
}

function link(href, text) {
  const a = el("a", { href }, text);
  a.addEventListener("click", (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    history.pushState(null, "", href);
    route();
  });
  return a;
}

async function casesPage() {
  const page = await api("/api/v1/cases?limit=50");
  show("Mooie voorbeelden",
    el("p", {}, "Innovaties van scholen, met de bouwstenen die ze droegen."),
    el("ul", { class: "kaarten" }, page.items.map((c) =>
      el("li", {}, el("h2", {}, link(`/zaken/${c.id}`, c.title)),
        el("p", { class: "fase" }, FASEN[c.phase] || c.phase),
        el("p", {}, c.summary)))));
}

function scanTable(scan) {
  const rows = BOUWSTENEN.map(([slug, name]) => {
    const block = (scan && scan[slug]) || {};
    const cell = (level) => {
      const value = block[level] || {};
      const score = value.score === null || value.score === undefined ? "niet beoordeeld" : `${value.score} van 5`;
      return el("td", {}, el("strong", {}, score), value.note ? el("p", {}, value.note) : null);
    };
    return el("tr", {}, el("th", { scope: "row" }, name), cell("innovatieteam"), cell("omgeving"));
  });
  return el("table", { class: "scan" },
    el("caption", {}, "Bouwstenenscan"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Bouwsteen"),
      el("th", { scope: "col" }, "Innovatieteam"), el("th", { scope: "col" }, "Omgeving"))),
    el("tbody", {}, rows));
}

async function casePage(id) {
  const c = await api(`/api/v1/cases/${encodeURIComponent(id)}`);
  const lessons = await api(`/api/v1/lessons?case=${encodeURIComponent(id)}&limit=50`);
  const facts = [
    ["Fase", FASEN[c.phase] || c.phase],
    ["Vraag", c.question], ["Doel", c.goal], ["Doelgroep", c.target_group], ["Team", c.team],
    ["Thema's", (c.themes || []).join(", ")], ["Licentie", c.licence], ["Contact", c.contact],
  ].filter(([, value]) => value);
  show(c.title,
    el("p", {}, c.summary),
    el("dl", {}, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
    scanTable(c.scan),
    el("h2", {}, "Geleerde lessen"),
    lessons.items.length
      ? el("ul", {}, lessons.items.map((l) => el("li", {}, el("h3", {}, l.title), el("p", {}, l.body))))
      : el("p", {}, "Nog geen geleerde lessen."));
}

async function listPage(collection, heading, render) {
  const page = await api(`/api/v1/${collection}?limit=200`);
  show(heading, el("ul", { class: "kaarten" }, page.items.map(render)));
}

async function route() {
  const path = location.pathname;
  try {
    let match;
    if ((match = path.match(/^\/zaken\/([0-9A-Za-z]{26})$/))) await casePage(match[1]);
    else if (path === "/scholen")
      await listPage("schools", "Scholen", (s) => el("li", {}, el("h2", {}, s.name), el("p", {}, `${s.place} · ${s.sector.toUpperCase()}`)));
    else if (path === "/brigadiers")
      await listPage("people", "Brigadiers", (p) => el("li", {}, el("h2", {}, p.name), el("p", {}, p.bio || "")));
    else if (path === "/hulpvragen")
      await listPage("requests", "Hulpvragen", (r) => el("li", {}, el("h2", {}, r.title), el("p", {}, r.question)));
    else await casesPage();
  } catch (error) {
    show("Er ging iets mis", el("p", { role: "alert" }, error.message));
  }
}

window.addEventListener("popstate", route);
api("/api/v1/node").then((node) => {
  document.getElementById("knoop").textContent = `Olievlek-knooppunt ${node.name}`;
}).catch(() => {});
route();
