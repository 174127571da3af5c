// Small DOM helpers: build elements from data without ever parsing record text as HTML.

// el("a", {href: "/x", class: "y", onclick: fn}, "text", child, [more]) → element.
// Attributes starting with "on" become listeners; true/false toggle boolean attributes;
// null/undefined/false children are skipped, so conditional parts read naturally.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// The search snippet is HTML-escaped by the node with matches in <mark>. Rebuild it from text
// and <mark> only, so a node that got it wrong can still never inject markup.
export function snippet(html) {
  const holder = document.createElement("template");
  holder.innerHTML = html || "";
  const out = document.createElement("span");
  for (const part of holder.content.childNodes) {
    if (part.nodeName === "MARK") out.append(el("mark", {}, part.textContent));
    else out.append(document.createTextNode(part.textContent));
  }
  return out;
}

let uniqueCounter = 0;
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}
