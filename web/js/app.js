// Olievlek's web client: the page shell (menu, language, sign-in), one live connection shared by
// every page, and the routes. No framework and no build step: modules the node serves as they
// are, so what runs in the browser is what is in web/.

import { el } from "./dom.js";
import { get } from "./api.js";
import { lang, setLang, t } from "./i18n.js";
import { LiveFeed } from "./live.js";
import { addRoute, navigate, render, startRouter } from "./router.js";
import { currentAccount, loadAccount, onAccountChange, signOut } from "./session.js";
import { homePage } from "./pages/home.js";
import { searchPage } from "./pages/search.js";
import { casePage, lessonPage } from "./pages/case.js";
import { peoplePage, personPage, requestPage, requestsPage, schoolPage, schoolsPage } from "./pages/directory.js";
import { editCasePage, editLessonPage, editPersonPage } from "./pages/edit.js";
import { editVisitPage, visitPage } from "./pages/visit.js";
import { adminPage, reviewPage, signInPage } from "./pages/account.js";

export const live = new LiveFeed();
export let nodeInfo = null;

// The name of the node a record comes from: this node's own name, else its id (other nodes'
// names arrive with their region records once nodes federate).
export async function nodeName(id) {
  if (nodeInfo && nodeInfo.id === id) return nodeInfo.name;
  return id;
}

let pendingFlash = null;
export function flash(text) {
  pendingFlash = text;
}

function withFlash(page) {
  return async (ctx) => {
    const result = await page(ctx);
    if (pendingFlash) {
      result.content = [el("p", { class: "notice", role: "status" }, pendingFlash), ...[result.content].flat()];
      pendingFlash = null;
    }
    return result;
  };
}

const ID = "([0-9A-Za-z]{26})";
const ROUTES = [
  [/^\/$/, homePage],
  [/^\/zoeken$/, searchPage],
  [/^\/voorbeelden\/nieuw$/, editCasePage],
  [new RegExp(`^/voorbeelden/${ID}/bewerken$`), editCasePage],
  [new RegExp(`^/voorbeelden/${ID}$`), casePage],
  [/^\/lessen\/nieuw$/, editLessonPage],
  [new RegExp(`^/lessen/${ID}/bewerken$`), editLessonPage],
  [new RegExp(`^/lessen/${ID}$`), lessonPage],
  [/^\/scholen$/, schoolsPage],
  [new RegExp(`^/scholen/${ID}$`), schoolPage],
  [/^\/brigadiers$/, peoplePage],
  [new RegExp(`^/brigadiers/${ID}/bewerken$`), editPersonPage],
  [new RegExp(`^/brigadiers/${ID}$`), personPage],
  [/^\/bezoeken\/nieuw$/, editVisitPage],
  [new RegExp(`^/bezoeken/${ID}/bewerken$`), editVisitPage],
  [new RegExp(`^/bezoeken/${ID}$`), visitPage],
  [/^\/hulpvragen$/, requestsPage],
  [new RegExp(`^/hulpvragen/${ID}$`), requestPage],
  [/^\/inloggen$/, signInPage],
  [/^\/beoordelen$/, reviewPage],
  [/^\/concepten$/, reviewPage],
  [/^\/beheer$/, adminPage],
  [/^/, async () => ({ title: t("error.title"), content: el("p", { role: "alert" }, t("error.notfound")) })],
];

function navLink(href, key) {
  return el("li", {}, el("a", { href }, t(key)));
}

function renderShell() {
  const account = currentAccount();
  document.documentElement.lang = lang();
  document.querySelector(".skip").textContent = t("skip");
  const nav = document.querySelector("header nav");
  nav.setAttribute("aria-label", t("nav.label"));
  const writer = account && ["school-editor", "moderator", "admin"].includes(account.role);
  const items = [
    navLink("/", "nav.home"), navLink("/zoeken", "nav.search"), navLink("/scholen", "nav.schools"),
    navLink("/brigadiers", "nav.people"), navLink("/hulpvragen", "nav.requests"),
    writer ? navLink("/voorbeelden/nieuw", "edit.new_case") : null,
    account && account.role === "brigadier" && account.person ? navLink("/bezoeken/nieuw", "edit.new_visit") : null,
    account && (account.role === "moderator" || account.role === "admin") ? navLink("/beoordelen", "nav.review") : null,
    account && (account.role === "school-editor" || account.role === "brigadier") ? navLink("/concepten", "nav.drafts") : null,
    account && account.role === "admin" ? navLink("/beheer", "nav.admin") : null,
  ];
  nav.querySelector("ul").replaceChildren(...items.filter(Boolean));
  const who = document.getElementById("wie");
  if (account) {
    const out = el("button", { type: "button", class: "link-button", id: "uitloggen" }, t("nav.signout"));
    out.addEventListener("click", async () => { await signOut(); navigate("/"); });
    const profile = account.person ? el("a", { href: `/brigadiers/${account.person}` }, account.display_name || account.username) : (account.display_name || account.username);
    who.replaceChildren(el("span", {}, t("signin.as", { name: "" }).trim(), " ", profile), " ", out);
  } else {
    who.replaceChildren(el("a", { href: `/inloggen?terug=${encodeURIComponent(location.pathname + location.search)}`, id: "inloggen" }, t("nav.signin")));
  }
  const switcher = document.getElementById("taal");
  switcher.textContent = t("lang.switch");
  switcher.setAttribute("lang", lang() === "nl" ? "en" : "nl");
  switcher.setAttribute("aria-label", t("lang.switch.label"));
  document.getElementById("knoop").textContent = nodeInfo ? t("footer.node", { name: nodeInfo.name }) : "";
}

async function boot() {
  setLang(lang());
  for (const [pattern, page] of ROUTES) addRoute(pattern, withFlash(page));
  document.getElementById("taal").addEventListener("click", () => {
    setLang(lang() === "nl" ? "en" : "nl");
    renderShell();
    render();
  });
  onAccountChange(() => renderShell());
  const [node] = await Promise.all([get("/api/v1/node").catch(() => null), loadAccount().catch(() => null)]);
  nodeInfo = node;
  renderShell();
  await startRouter();
}

boot();
