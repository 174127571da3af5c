// The bouwstenen scan of a case: seven building blocks, each scored 1–5 (or not assessed) at two
// levels, innovatieteam and omgeving, with notes on where an intervention could help. Drawn as an
// SVG bar chart for the eye, and as a table with the same data for screen readers (visually
// hidden until asked for, so sighted keyboard users can open it too).

import { el, uniqueId } from "./dom.js";
import { BOUWSTENEN, label, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const LEVELS = ["innovatieteam", "omgeving"];
const WIDTH = 640, LEFT = 118, RIGHT = 40, ROW = 66, BAR = 16;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function cell(scan, block, level) {
  const part = scan && scan[block] && scan[block][level];
  return part || null;
}

export function hasScan(scan) {
  return !!scan && BOUWSTENEN.some((b) => LEVELS.some((l) => cell(scan, b, l)));
}

function chart(scan, describedBy) {
  const plot = WIDTH - LEFT - RIGHT;
  const height = BOUWSTENEN.length * ROW + 28;
  const root = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${height}`, class: "scan-chart", role: "img",
    "aria-label": t("scan.title"), "aria-describedby": describedBy, focusable: "false",
  });
  for (let score = 0; score <= 5; score++) {
    const x = LEFT + (plot * score) / 5;
    root.append(svg("text", { x, y: height - 6, class: "axis", "text-anchor": "middle" }, score));
  }
  BOUWSTENEN.forEach((block, index) => {
    const top = index * ROW + 4;
    // Grid lines behind each block's bars only, so they never cross its title.
    for (let score = 0; score <= 5; score++) {
      const x = LEFT + (plot * score) / 5;
      root.append(svg("line", { x1: x, x2: x, y1: top + 18, y2: top + 22 + 2 * (BAR + 4), class: "grid" }));
    }
    root.append(svg("text", { x: 0, y: top + 13, class: "block" }, `${index + 1}. ${label("bouwsteen", block)}`));
    LEVELS.forEach((level, row) => {
      const y = top + 20 + row * (BAR + 4);
      root.append(svg("text", { x: 0, y: y + BAR - 4, class: "level" }, t(`level.${level}`)));
      const value = cell(scan, block, level);
      const score = value && Number.isInteger(value.score) ? value.score : null;
      if (score === null) {
        root.append(svg("rect", { x: LEFT, y, width: plot, height: BAR, class: "unscored" }));
        root.append(svg("text", { x: LEFT + 6, y: y + BAR - 4, class: "value" }, t("scan.unscored")));
      } else {
        root.append(svg("rect", { x: LEFT, y, width: (plot * score) / 5, height: BAR, class: `bar ${level}` }));
        root.append(svg("text", { x: LEFT + (plot * score) / 5 + 6, y: y + BAR - 4, class: "value" }, score));
      }
    });
  });
  return root;
}

function scoreText(value) {
  if (!value || !Number.isInteger(value.score)) return t("scan.unscored");
  return t("scan.score", { score: value.score });
}

function table(scan, captionId) {
  const rows = BOUWSTENEN.map((block, index) => el("tr", {},
    el("th", { scope: "row" }, `${index + 1}. ${label("bouwsteen", block)}`),
    LEVELS.map((level) => {
      const value = cell(scan, block, level);
      return el("td", {}, el("span", { class: "score" }, scoreText(value)), value && value.note ? el("p", {}, value.note) : null);
    })));
  return el("table", { class: "scan-table" },
    el("caption", { id: captionId }, t("scan.title")),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("scan.block")),
      LEVELS.map((level) => el("th", { scope: "col" }, t(`level.${level}`))))),
    el("tbody", {}, rows));
}

// The notes, readable beside the chart. Screen readers get them in the table.
function notes(scan) {
  const items = [];
  BOUWSTENEN.forEach((block, index) => {
    const parts = LEVELS.map((level) => [level, cell(scan, block, level)]).filter(([, v]) => v && v.note);
    if (parts.length) items.push(el("li", {}, el("strong", {}, `${index + 1}. ${label("bouwsteen", block)}`),
      parts.map(([level, v]) => el("p", {}, el("span", { class: `swatch ${level}` }), `${t(`level.${level}`)}: ${v.note}`))));
  });
  return items.length ? el("ul", { class: "scan-notes", "aria-hidden": "true" }, items) : null;
}

export function scanView(scan) {
  if (!hasScan(scan)) return el("p", {}, t("scan.none"));
  const captionId = uniqueId("scan-caption");
  const tableId = uniqueId("scan-table");
  const tableBox = el("div", { id: tableId, class: "visually-hidden" }, table(scan, captionId));
  const toggle = el("button", { type: "button", class: "link-button", "aria-expanded": "false", "aria-controls": tableId }, t("scan.table.show"));
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = t(open ? "scan.table.hide" : "scan.table.show");
    tableBox.className = open ? "" : "visually-hidden";
  });
  return el("figure", { class: "scan" },
    el("p", { class: "legend", "aria-hidden": "true" },
      el("span", { class: "swatch innovatieteam" }), t("level.innovatieteam"), " ",
      el("span", { class: "swatch omgeving" }), t("level.omgeving")),
    chart(scan, captionId),
    notes(scan),
    toggle,
    tableBox);
}
