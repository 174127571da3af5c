// Every word the web client shows exists in Dutch and in English: the two dictionaries have the
// same keys, and every literal key the pages ask for is in them (a missing one would show as the
// raw key in the page).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "web", "js");
const i18n = await import(join(web, "i18n.js"));

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".js") ? [join(dir, entry.name)] : []);
}

function wordsOf(language) {
  // The dictionaries are private to the module; t() shows a key unchanged when it is missing.
  i18n.setLang(language);
  return (key) => i18n.t(key) !== key;
}

test("Dutch and English have the same keys", () => {
  const text = readFileSync(join(web, "i18n.js"), "utf8");
  const block = (name) => {
    const start = text.indexOf(`  ${name}: {`);
    const end = text.indexOf("\n  },", start);
    return [...text.slice(start, end).matchAll(/^\s+"([^"]+)":/gm)].map((m) => m[1]).sort();
  };
  const nl = block("nl"), en = block("en");
  assert.ok(nl.length > 100, "the Dutch dictionary is read");
  assert.deepEqual(en.filter((k) => !nl.includes(k)), [], "English keys missing in Dutch");
  assert.deepEqual(nl.filter((k) => !en.includes(k)), [], "Dutch keys missing in English");
});

test("every key the pages use is translated", () => {
  globalThis.document = { documentElement: {} };
  const used = new Set();
  for (const file of sources(web)) {
    for (const match of readFileSync(file, "utf8").matchAll(/\bt\("([a-z_.-]+)"/g)) used.add(match[1]);
  }
  assert.ok(used.size > 100, `keys found in the pages (${used.size})`);
  for (const language of ["nl", "en"]) {
    const has = wordsOf(language);
    assert.deepEqual([...used].filter((key) => !has(key)), [], `keys missing in ${language}`);
  }
});

test("enumerations have words in both languages", () => {
  globalThis.document = { documentElement: {} };
  for (const language of ["nl", "en"]) {
    i18n.setLang(language);
    for (const [group, values] of [["phase", i18n.PHASES], ["sector", i18n.SECTORS], ["availability", i18n.AVAILABILITY], ["bouwsteen", i18n.BOUWSTENEN], ["principle", i18n.PRINCIPLES]]) {
      for (const value of values) assert.notEqual(i18n.label(group, value), String(value), `${language}: ${group} ${value}`);
    }
  }
  i18n.setLang("nl");
  assert.equal(i18n.label("bouwsteen", "delen"), "Delen wat werkt");
  assert.equal(i18n.t("search.results", { n: 3 }), "3 resultaten");
});
