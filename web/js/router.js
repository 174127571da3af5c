// Client-side routes. The node serves index.html for every path that is not a file, so every
// page has a URL that can be shared and reloaded, and the back button works. A page is a
// function (ctx) → {title, content}; ctx.onLeave registers clean-up (live subscriptions) that
// runs when the page is left. A slow page that finishes after the user moved on is discarded.

import { el } from "./dom.js";
import { t } from "./i18n.js";

const routes = [];
let leaving = [];
let generation = 0;
let firstRender = true;
let renderedUrl = null;

export function addRoute(pattern, page) {
  routes.push({ pattern, page });
}

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  return render();
}

// Same-origin links navigate without reloading; modified clicks, downloads, API links and
// links to other windows keep the browser's behaviour.
function onClick(event) {
  if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || url.pathname === "/metrics") return;
  // A link to a place on this page (the skip link) is the browser's to follow.
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  if (url.pathname === location.pathname && url.search === location.search) return;
  navigate(url.pathname + url.search + url.hash);
}

export async function render() {
  generation += 1;
  const mine = generation;
  for (const fn of leaving) fn();
  leaving = [];
  const main = document.getElementById("inhoud");
  const path = location.pathname;
  renderedUrl = path + location.search;
  const query = new URLSearchParams(location.search);
  const ctx = {
    query,
    onLeave: (fn) => { if (mine === generation) leaving.push(fn); else fn(); },
    current: () => mine === generation,
  };
  main.setAttribute("aria-busy", "true");
  let result;
  try {
    const route = routes.find((r) => r.pattern.test(path)) || routes[routes.length - 1];
    ctx.params = path.match(route.pattern)?.slice(1).map(decodeURIComponent) || [];
    result = await route.page(ctx);
  } catch (error) {
    if (error.name === "AbortError") return;
    result = { title: t("error.title"), content: el("p", { role: "alert", class: "problem" }, error.message) };
  }
  if (mine !== generation) return;
  const heading = el("h1", { id: "titel", tabindex: "-1" }, result.title);
  main.replaceChildren(heading, ...[result.content].flat().filter(Boolean));
  main.removeAttribute("aria-busy");
  document.title = `${result.title} — Olievlek`;
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.getAttribute("href") === path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // After a navigation, move focus to the new heading so screen readers announce the page;
  // not on the first load, where the browser's own focus start is right.
  if (!firstRender && !result.keepFocus) heading.focus();
  firstRender = false;
  if (result.after) result.after();
}

export function startRouter() {
  document.addEventListener("click", onClick);
  // Following a link to a place on the page (#inhoud) also fires popstate: not a new page.
  window.addEventListener("popstate", () => { if (location.pathname + location.search !== renderedUrl) render(); });
  return render();
}
