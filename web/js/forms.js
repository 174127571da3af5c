// Form building blocks: every field has a visible label, an optional hint, and a place for the
// node's message about it. The node validates (docs/records.md); its errors come back with the
// JSON path of the member ("title", "themes[2]", "scan.doel.omgeving.score") and are shown next
// to the field that path belongs to, in plain words, with a summary at the top of the form.

import { el } from "./dom.js";
import { t } from "./i18n.js";

let formCounter = 0;

// field({path: "title", label, input: "text"|"textarea"|"select", options: [[value, text]], value, hint, required})
export function field(spec) {
  formCounter += 1;
  const id = `veld-${spec.path.replace(/[^A-Za-z0-9]/g, "-")}-${formCounter}`;
  const hintId = spec.hint ? `${id}-hint` : null;
  const errorId = `${id}-fout`;
  let input;
  if (spec.input === "textarea") input = el("textarea", { id, name: spec.path, rows: spec.rows || 5 }, spec.value ?? "");
  else if (spec.input === "select") {
    input = el("select", { id, name: spec.path },
      spec.options.map(([value, text]) => el("option", { value, selected: String(spec.value ?? "") === String(value) }, text)));
  } else input = el("input", { id, name: spec.path, type: spec.type || "text", value: spec.value ?? "", autocomplete: spec.autocomplete || "off" });
  if (spec.required) input.setAttribute("aria-required", "true");
  input.dataset.path = spec.path;
  input.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  const wrapper = el("div", { class: "field", "data-path": spec.path },
    el("label", { for: id }, spec.label, spec.required ? el("span", { class: "required", "aria-hidden": "true" }, " *") : null),
    spec.hint ? el("p", { class: "hint", id: hintId }, spec.hint) : null,
    el("p", { class: "field-error", id: errorId, hidden: true }),
    input);
  wrapper.input = input;
  return wrapper;
}

// A group of checkboxes (bouwstenen, principles) under one legend; its errors show on the group.
export function checkboxes(path, legend, options, chosen = []) {
  formCounter += 1;
  const errorId = `groep-${path}-${formCounter}-fout`;
  const boxes = options.map(([value, text], index) => {
    const id = `groep-${path}-${formCounter}-${index}`;
    return el("div", { class: "check" },
      el("input", { type: "checkbox", id, name: path, value, checked: chosen.map(String).includes(String(value)) }),
      el("label", { for: id }, text));
  });
  const group = el("fieldset", { class: "field checks", "data-path": path, "aria-describedby": errorId },
    el("legend", {}, legend), el("p", { class: "field-error", id: errorId, hidden: true }), boxes);
  group.values = () => [...group.querySelectorAll("input:checked")].map((b) => b.value);
  return group;
}

// The field a JSON path belongs to: the exact one, else without list indexes, else a parent.
function holderFor(form, path) {
  const candidates = [path, path.replace(/\[\d+\]/g, "")];
  let trimmed = path.replace(/\[\d+\]/g, "");
  while (trimmed.includes(".")) {
    trimmed = trimmed.slice(0, trimmed.lastIndexOf("."));
    candidates.push(trimmed);
  }
  for (const candidate of candidates) {
    const holder = form.querySelector(`[data-path="${CSS.escape(candidate)}"].field`);
    if (holder) return holder;
  }
  return null;
}

export function clearErrors(form) {
  for (const message of form.querySelectorAll(".field-error")) { message.hidden = true; message.textContent = ""; }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  const summary = form.querySelector(".form-summary");
  if (summary) { summary.hidden = true; summary.replaceChildren(); }
}

// Show an ApiError on the form: field messages beside their fields, the rest in the summary.
export function showErrors(form, error) {
  clearErrors(form);
  const summary = form.querySelector(".form-summary");
  const items = [];
  for (const { field: path, message } of error.fields || []) {
    const holder = holderFor(form, path || "");
    if (!holder) { items.push(el("li", {}, path ? `${path}: ${message}` : message)); continue; }
    const text = holder.querySelector(".field-error");
    text.hidden = false;
    text.textContent = text.textContent ? `${text.textContent}; ${message}` : message;
    const input = holder.input || holder.querySelector("input, select, textarea");
    if (input) input.setAttribute("aria-invalid", "true");
    const name = holder.querySelector("label, legend")?.textContent.replace(/\s*\*$/, "") || path;
    const target = input?.id;
    items.push(el("li", {}, target ? el("a", { href: `#${target}`, onclick: (e) => { e.preventDefault(); input.focus(); } }, `${name}: ${message}`) : `${name}: ${message}`));
  }
  summary.hidden = false;
  summary.replaceChildren(el("p", {}, error.message), items.length ? el("ul", {}, items) : null);
  summary.focus();
}

export function formSummary() {
  return el("div", { class: "form-summary", role: "alert", tabindex: "-1", hidden: true });
}

// Comma-separated themes to a list without empty items or repeats.
export function themeList(text) {
  const seen = new Set();
  return String(text || "").split(",").map((s) => s.trim()).filter((s) => s && !seen.has(s.toLowerCase()) && seen.add(s.toLowerCase()));
}

// The value of a text field for a record member: absent (null) when left empty, so optional
// members stay out of the record instead of failing as empty texts.
export function textValue(wrapper) {
  const value = wrapper.input.value.replace(/\r\n?/g, "\n").trim();
  return value === "" ? null : value;
}

export const savingLabel = () => t("loading");
