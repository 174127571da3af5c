// The bouwstenen scan of a case: seven building blocks, each scored 1–5 (or not assessed) at two
// levels, innovatieteam and omgeving, with notes on where an intervention could help. Drawn as an
// bar chart for the eye, and as a table with the same data for screen readers (visually
// hidden until asked for, so sighted keyboard users can open it too).

import { el, uniqueId } from "./dom.js";
import { BOUWSTENEN, label, t } from "./i18n.js";

const LEVELS = ["innovatieteam", "omgeving"];

function cell(scan, block, level) {
  const part = scan && scan[block] && scan[block][level];
  return part || null;
}

export function hasScan(scan) {
  return !!scan && BOUWSTENEN.some((b) => LEVELS.some((l) => cell(scan, b, l)));
}

// Bars in HTML and CSS rather than SVG, so titles wrap and the chart stays readable at 360 px.
// The chart is for the eye; the table below carries the same data for screen readers.
function chart(scan) {
  return el("div", { class: "scan-chart", "aria-hidden": "true" },
    BOUWSTENEN.map((block, index) => el("div", { class: "scan-row", "data-block": block },
      el("p", { class: "block" }, `${index + 1}. ${label("bouwsteen", block)}`),
      LEVELS.map((level) => {
        const value = cell(scan, block, level);
        const score = value && Number.isInteger(value.score) ? value.score : null;
        return el("div", { class: "bar-row" },
          el("span", { class: "level" }, t(`level.${level}`)),
          el("span", { class: "track" }, score === null
            ? el("span", { class: "unscored" }, t("scan.unscored"))
            : el("span", { class: `bar ${level}`, style: `width: ${score * 20}%` })),
          el("span", { class: "value" }, score === null ? "–" : String(score)));
      }),
      LEVELS.map((level) => {
        const value = cell(scan, block, level);
        return value && value.note ? el("p", { class: "note" }, el("span", { class: `swatch ${level}` }), `${t(`level.${level}`)}: ${value.note}`) : null;
      }))),
    el("div", { class: "bar-row scale" }, el("span", { class: "level" }), el("span", { class: "track ticks" }, [0, 1, 2, 3, 4, 5].map((n) => el("span", {}, String(n)))), el("span", { class: "value" })));
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
    chart(scan),
    toggle,
    tableBox);
}
