// How records look in lists: one card shape per kind, shared by home, search, school pages and
// the review queue, so a case looks the same wherever it is found.

import { el, snippet } from "./dom.js";
import { formatDate, formatDay, label, t } from "./i18n.js";
import { nameOf } from "./api.js";

const PATHS = { case: "voorbeelden", lesson: "lessen", school: "scholen", person: "brigadiers", request: "hulpvragen", region: "regio", visit: "bezoeken" };
const COLLECTIONS = { case: "cases", lesson: "lessons", school: "schools", person: "people", request: "requests", region: "regions", visit: "visits" };

export const pathOf = (record) => `/${PATHS[record.kind]}/${record.id}`;
export const collectionOf = (kind) => COLLECTIONS[kind];
export const kindOfPath = (segment) => Object.keys(PATHS).find((k) => PATHS[k] === segment);

export function titleOf(record) {
  return record.title || record.name || record.id;
}

// A text filled in later (a school's name) without holding up the card.
// What a promise gives, once it does; until then the placeholder (a link must never be empty,
// or a screen reader meets a link without a name).
export function later(promise, render = (v) => v, placeholder = "") {
  const span = el("span", {}, placeholder);
  promise.then((value) => span.replaceChildren(render(value) ?? "")).catch(() => {});
  return span;
}

export function schoolLink(id) {
  return el("a", { href: `/scholen/${id}` }, later(nameOf("schools", id), (v) => v, label("kind", "school")));
}

function badges(record) {
  return [
    record.status === "draft" ? el("span", { class: "badge draft" }, label("status", "draft")) : null,
    record.generated ? el("span", { class: "badge generated", title: t("case.generated") }, t("case.generated")) : null,
  ];
}

function meta(record) {
  const parts = [];
  parts.push(label("kind", record.kind));
  if (record.kind === "visit" && record.date) parts.push(formatDay(record.date));
  if (record.phase) parts.push(label("phase", record.phase));
  if (record.state) parts.push(label("state", record.state));
  if (record.sector) parts.push(label("sector", record.sector));
  if (record.place) parts.push(record.place);
  if (record.availability) parts.push(label("availability", record.availability));
  return parts.join(" · ");
}

function summaryOf(record) {
  const text = record.summary || record.body || record.question || record.notes || record.bio || "";
  return text.length > 240 ? `${text.slice(0, 237).trimEnd()}…` : text;
}

// card(record, {snippetHtml, mark: "nieuw", headingLevel: 3})
export function card(record, options = {}) {
  const heading = `h${options.headingLevel || 3}`;
  const school = record.school || (record.schools && record.schools[0]);
  return el("li", { class: "card", "data-id": record.id, "data-kind": record.kind },
    el(heading, {}, el("a", { href: pathOf(record) }, titleOf(record))),
    el("p", { class: "meta" }, meta(record), options.mark ? el("span", { class: "badge live" }, options.mark) : null, badges(record)),
    options.snippetHtml ? el("p", { class: "snippet" }, snippet(options.snippetHtml)) : el("p", {}, summaryOf(record)),
    school && record.kind !== "school" ? el("p", { class: "school" }, schoolLink(school)) : null,
    record.updated && options.showDate ? el("p", { class: "meta" }, formatDate(record.updated)) : null);
}

export function cardList(records, options = {}) {
  return el("ul", { class: "cards", ...(options.attrs || {}) }, records.map((r) => card(r, options)));
}

// A definition list of the members that are filled in.
export function facts(pairs) {
  const filled = pairs.filter(([, value]) => value !== undefined && value !== null && value !== "" && !(Array.isArray(value) && !value.length));
  return el("dl", { class: "facts" }, filled.map(([key, value]) => [el("dt", {}, key), el("dd", {}, value)]));
}

export function paragraphs(text) {
  return String(text || "").split(/\n{2,}/).map((p) => el("p", {}, p));
}
