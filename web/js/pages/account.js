// Signing in and out, the moderator's review queue, a school's drafts, and the admin's node page.

import { el } from "../dom.js";
import { get, request, ApiError } from "../api.js";
import { formatDate, label, t } from "../i18n.js";
import { field, formSummary, clearErrors } from "../forms.js";
import { currentAccount, mayPublish, signIn } from "../session.js";
import { navigate } from "../router.js";
import { card, collectionOf, facts, titleOf } from "../records.js";

export async function signInPage(ctx) {
  const back = ctx.query.get("terug");
  const target = back && back.startsWith("/") && !back.startsWith("//") ? back : "/";
  const username = field({ path: "username", label: t("signin.username"), autocomplete: "username", required: true });
  const password = field({ path: "password", label: t("signin.password"), type: "password", autocomplete: "current-password", required: true });
  const summary = formSummary();
  const button = el("button", { type: "submit" }, t("signin.button"));
  const form = el("form", { class: "record-form narrow", novalidate: true }, summary, username, password, el("p", { class: "actions" }, button));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    button.disabled = true;
    try {
      await signIn(username.input.value.trim(), password.input.value);
      navigate(target);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      summary.hidden = false;
      summary.textContent = error.status === 401 ? t("signin.failed") : error.status === 429 ? t("signin.limited") : error.message;
      summary.focus();
    } finally {
      button.disabled = false;
    }
  });
  return { title: t("signin.title"), content: form };
}

const REVIEWED = ["case", "lesson", "request", "visit", "person", "school"];

// Drafts the account may read, of every kind. The node lists only the drafts the caller may read
// (a moderator's region, an editor's school), so no filter is sent: a lesson has no region of
// its own, and a region filter would miss it.
async function drafts() {
  const query = { status: "draft", limit: 200 };
  const pages = await Promise.all(REVIEWED.map((kind) => get(`/api/v1/${collectionOf(kind)}`, query).catch(() => ({ items: [] }))));
  return pages.flatMap((page) => page.items);
}

export async function reviewPage(ctx) {
  const account = currentAccount();
  if (!account) return { title: t("review.title"), content: el("p", { role: "alert" }, t("error.signin")) };
  const publishing = mayPublish();
  const items = await drafts();
  const notice = el("p", { role: "status", class: "notice" });
  const list = el("ul", { class: "cards", id: "concepten" }, items.map((record) => {
    const item = card(record, { showDate: true });
    if (publishing) {
      const button = el("button", { type: "button" }, t("review.publish"));
      button.setAttribute("aria-label", `${t("review.publish")}: ${titleOf(record)}`);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await request("POST", `/api/v1/${collectionOf(record.kind)}/${record.id}/publish`);
          item.remove();
          notice.textContent = t("review.published", { title: titleOf(record) });
          if (!list.children.length) list.replaceWith(el("p", {}, t("review.none")));
        } catch (error) {
          notice.textContent = error.message;
          button.disabled = false;
        }
      });
      item.append(el("p", { class: "actions" }, button));
    }
    return item;
  }));
  return {
    title: t(publishing ? "review.title" : "drafts.title"),
    content: [el("p", { class: "lead" }, t(publishing ? "review.intro" : account.role === "brigadier" ? "drafts.intro.brigadier" : "drafts.intro")), notice,
      items.length ? list : el("p", {}, t(publishing ? "review.none" : "drafts.none"))],
  };
}

function hex(text) {
  return el("code", { class: "hex" }, text);
}

export async function adminPage() {
  const account = currentAccount();
  if (!account || account.role !== "admin") return { title: t("admin.title"), content: el("p", { role: "alert" }, account ? t("error.forbidden") : t("error.signin")) };
  const [node, kinds, accounts] = await Promise.all([
    get("/api/v1/node"),
    get("/api/v1/search", { limit: 1 }),
    get("/api/v1/accounts"),
  ]);
  const head = node.head;
  return {
    title: `${t("admin.title")}: ${node.name}`,
    content: [
      el("section", { "aria-labelledby": "h-id" }, el("h2", { id: "h-id" }, t("admin.identity")),
        facts([[t("admin.id"), hex(node.id)], [t("admin.key"), hex(node.public_key)]])),
      el("section", { "aria-labelledby": "h-head" }, el("h2", { id: "h-head" }, t("admin.head")),
        head ? facts([[t("admin.head.seq"), String(head.seq)], [t("admin.head.time"), `${formatDate(head.time)} (${head.time})`],
          [t("admin.head.hash"), hex(head.hash)], [t("admin.head.signature"), hex(head.signature)]]) : el("p", {}, t("admin.head.none"))),
      el("section", { "aria-labelledby": "h-counts" }, el("h2", { id: "h-counts" }, t("admin.counts")),
        facts([[t("admin.records"), String(node.records)], [t("admin.log_entries"), String(node.log_entries)], [t("admin.last_change"), String(node.last_change)],
          [t("admin.published_by_kind"), (kinds.facets.kind || []).map((k) => `${label("kind", k.value)}: ${k.count}`).join(" · ")]])),
      el("section", { "aria-labelledby": "h-peers" }, el("h2", { id: "h-peers" }, t("admin.peers")),
        Array.isArray(node.peers) && node.peers.length
          ? el("table", { class: "data", id: "peers" },
            el("thead", {}, el("tr", {}, ["admin.peer.id", "admin.peer.url", "admin.peer.state", "admin.peer.entries", "admin.peer.error"]
              .map((k) => el("th", { scope: "col" }, t(k))))),
            el("tbody", {}, node.peers.map((p) => el("tr", {}, el("td", {}, hex(p.id)), el("td", {}, p.url || t("admin.peer.dials_in")),
              el("td", {}, t(`admin.peer.${p.state}`)), el("td", {}, String(p.entries_in)), el("td", {}, p.last_error || "")))))
          : el("p", {}, t("admin.peers.none"))),
      el("section", { "aria-labelledby": "h-origins" }, el("h2", { id: "h-origins" }, t("admin.origins")),
        el("table", { class: "data", id: "origins" },
          el("thead", {}, el("tr", {}, ["admin.origin", "admin.head.seq", "admin.head.time"].map((k) => el("th", { scope: "col" }, t(k))))),
          el("tbody", {}, (node.origins || []).map((o) => el("tr", {}, el("td", {}, hex(o.origin), o.origin === node.id ? ` (${t("admin.origin.self")})` : ""),
            el("td", {}, String(o.seq)), el("td", {}, formatDate(o.time))))))),
      node.forks ? el("p", { class: "problem", role: "alert" }, t("admin.forks", { n: node.forks })) : null,
      el("section", { "aria-labelledby": "h-accounts" }, el("h2", { id: "h-accounts" }, t("admin.accounts")),
        el("table", { class: "data" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("admin.account.username")), el("th", { scope: "col" }, t("admin.account.name")), el("th", { scope: "col" }, t("admin.account.role")))),
          el("tbody", {}, accounts.items.map((a) => el("tr", {}, el("td", {}, a.username), el("td", {}, a.display_name || ""), el("td", {}, t(`role.${a.role}`))))))),
    ],
  };
}

