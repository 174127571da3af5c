// The web client in a real browser against a real node: browsing, search with facets, a case and
// its bouwstenen scan, the editor → moderator → live flow, reconnecting, the language switch,
// narrow screens, readable errors — with axe-core's WCAG 2.1 AA checks on every page and
// screenshots of the main pages. Figures for docs/benchmarks.md are printed and saved.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Node, PASSWORD, checkAccessibility, launchBrowser, noProblems, openPage, recordFigure, screenshot, writeFigures } from "./harness.mjs";

let node, browser;
let intermezzo; // the Murmellius Gymnasium's intermezzo year, from the seeds

async function signInThroughForm(page, username) {
  await page.goto(`${node.url}/inloggen`);
  await page.getByLabel("Gebruikersnaam").fill(username);
  await page.getByLabel("Wachtwoord").fill(PASSWORD);
  await page.getByRole("button", { name: "Inloggen" }).click();
  await page.locator("#uitloggen").waitFor();
}

before(async () => {
  node = await new Node().start();
  browser = await launchBrowser();
  const found = await node.api("GET", "/api/v1/search?q=tussenjaar&kind=case&limit=1");
  intermezzo = found.data.hits[0].record;
  assert.match(intermezzo.title, /Murmellius/);
});

after(async () => {
  writeFigures();
  if (browser) await browser.close();
  if (node) {
    const exit = await node.stop();
    node.cleanup();
    assert.equal(exit.code, 0, "the node stops cleanly");
  }
});

describe("browsing", () => {
  test("home: search box and the newest cases, under 150 KB on first load", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(node.url + "/");
    await page.locator("#nieuwe-voorbeelden .card").first().waitFor();
    await page.getByText("Live: nieuwe bijdragen verschijnen vanzelf.").waitFor();
    assert.equal(await page.locator("h1").textContent(), "Kennis delen tussen scholen");
    assert.equal(await page.locator("html").getAttribute("lang"), "nl");
    assert.ok(await page.locator("#nieuwe-voorbeelden .card").count() >= 6, "cases on the home page");
    assert.ok(await page.locator("#nieuwe-lessen .card").count() >= 1, "lessons on the home page");
    // Everything transferred for the first load, compressed, headers included.
    const sizes = await page.evaluate(() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
      .reduce((sum, entry) => {
        const part = new URL(entry.name).pathname.startsWith("/api/") ? "data" : "files";
        sum[part] += entry.transferSize;
        sum.decoded += entry.decodedBodySize;
        return sum;
      }, { files: 0, data: 0, decoded: 0 }));
    const bytes = sizes.files + sizes.data;
    const external = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name).filter((n) => !n.startsWith(location.origin)));
    recordFigure("home_first_load_bytes", { transferred: bytes, files: sizes.files, api_data: sizes.data, uncompressed: sizes.decoded });
    assert.deepEqual(external, [], "nothing is loaded from elsewhere");
    assert.ok(bytes > 0 && bytes <= 150 * 1024, `home page first load ${bytes} bytes (≤ 150 KB)`);
    await checkAccessibility(page, "home");
    await screenshot(page, "home");
    noProblems(page);
    await context.close();
  });

  test("search: results as you type, highlighted snippets, facets, shareable URL, back button", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(node.url + "/zoeken");
    const box = page.getByLabel("Zoekwoorden");
    await box.pressSequentially("tussenjaar", { delay: 60 });
    await page.waitForFunction(() => document.querySelector("#zoek-resultaten")?.dataset.query === "tussenjaar");
    const first = page.locator("#zoek-resultaten .card").first();
    assert.equal(await first.locator("h3").textContent(), intermezzo.title, "the intermezzo case first");
    assert.ok(await first.locator("mark").count() >= 1, "the match is marked in the snippet");
    assert.equal(new URL(page.url()).searchParams.get("q"), "tussenjaar", "the query is in the URL");

    // Keystroke → results on screen, as the page measured it (performance.measure).
    const timings = await page.evaluate(() => performance.getEntriesByName("olievlek:search").map((m) => m.duration));
    assert.ok(timings.length >= 3, "a search per keystroke");
    const sorted = [...timings].sort((a, b) => a - b);
    recordFigure("search_keystroke_to_results_ms", { samples: sorted.length, median: Math.round(sorted[sorted.length >> 1]), max: Math.round(sorted[sorted.length - 1]) });

    // A facet narrows the results and adds a history entry; its counts show.
    const caseFacet = page.locator('fieldset[data-facet="kind"] input[value="case"]');
    const total = await page.locator(".result-count").textContent();
    await caseFacet.check();
    await page.waitForFunction(() => new URL(location.href).searchParams.get("kind") === "case");
    await page.waitForFunction((before) => document.querySelector(".result-count").textContent !== before, total);
    const kinds = await page.locator("#zoek-resultaten .card").evaluateAll((cards) => cards.map((c) => c.dataset.kind));
    assert.ok(kinds.length > 0 && kinds.every((k) => k === "case"), "only cases after choosing the facet");
    await checkAccessibility(page, "search with a facet");
    await screenshot(page, "search");

    // The URL can be shared: opened afresh it shows the same state.
    const shared = page.url();
    const other = await openPage(context);
    await other.goto(shared);
    await other.waitForFunction(() => document.querySelector("#zoek-resultaten .card"));
    assert.equal(await other.getByLabel("Zoekwoorden").inputValue(), "tussenjaar");
    assert.ok(await other.locator('fieldset[data-facet="kind"] input[value="case"]').isChecked(), "the facet is chosen");

    // Back: the facet is undone.
    await page.goBack();
    await page.waitForFunction(() => !new URL(location.href).searchParams.has("kind"));
    await page.waitForFunction(() => !document.querySelector('fieldset[data-facet="kind"] input[value="case"]')?.checked);
    noProblems(page);
    noProblems(other);
    await context.close();
  });

  test("word forms meet: 'samenwerkingen' finds what 'samenwerking' finds", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    const titles = async (q) => {
      await page.goto(`${node.url}/zoeken?q=${encodeURIComponent(q)}&kind=case`);
      await page.waitForFunction(() => document.querySelector(".result-count")?.textContent);
      return page.locator("#zoek-resultaten .card h3").allTextContents();
    };
    const plural = await titles("samenwerkingen ");
    const singular = await titles("samenwerking ");
    assert.ok(plural.length > 0);
    assert.deepEqual(plural, singular);
    noProblems(page);
    await context.close();
  });

  test("case: summary, facts, the bouwstenen scan as chart and as table, lessons", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(`${node.url}/voorbeelden/${intermezzo.id}`);
    await page.locator("h1", { hasText: intermezzo.title }).waitFor();
    assert.ok(await page.locator(".facts dt", { hasText: "Fase" }).count());
    // The school's name arrives after the page (it is fetched by id): wait for it, as a reader would.
    const school = page.locator('.facts a[href^="/scholen/"]').first();
    await school.filter({ hasText: "Murmellius Gymnasium" }).waitFor({ timeout: 10000 });
    assert.equal(await school.textContent(), "Murmellius Gymnasium");

    const chart = page.locator(".scan-chart");
    assert.equal(await chart.locator(".scan-row").count(), 7, "seven building blocks drawn");
    // Each scored level is a bar whose length is its score; the table says the same in words.
    const bars = await chart.locator(".bar").count();
    const scored = Object.values(intermezzo.scan).flatMap((b) => Object.values(b)).filter((v) => Number.isInteger(v.score)).length;
    assert.equal(bars, scored, "one bar per scored level");
    const width = (level) => chart.locator(`.scan-row[data-block="doel"] .bar.${level}`).evaluate((bar) => bar.getBoundingClientRect().width / bar.parentElement.getBoundingClientRect().width);
    assert.ok(Math.abs((await width("innovatieteam")) - intermezzo.scan.doel.innovatieteam.score / 5) < 0.02, "bar length is the score");
    const rows = page.locator(".scan-table tbody tr");
    assert.equal(await rows.count(), 7);
    const team = intermezzo.scan.doel.innovatieteam;
    assert.equal(await rows.nth(0).locator("td").nth(0).locator(".score").textContent(), `${team.score} van 5`);
    // The table is there for screen readers; a button shows it to everyone.
    const tableBox = page.locator(".scan-table").locator("xpath=..");
    assert.equal(await tableBox.getAttribute("class"), "visually-hidden", "the table is hidden from the eye at first");
    await page.getByRole("button", { name: "Toon de scan als tabel" }).click();
    assert.equal(await tableBox.getAttribute("class"), "", "the table is shown");
    assert.ok((await tableBox.boundingBox()).width > 100, "the table is shown");
    assert.ok(await page.locator("#lessen-bij-voorbeeld .card").count() >= 1, "its lessons learned");
    assert.ok(await page.getByText("CC BY 4.0").count(), "licence");
    await checkAccessibility(page, "case");
    await screenshot(page, "case");
    noProblems(page);
    await context.close();
  });

  test("schools, brigadiers and help requests, reached with the keyboard", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(node.url + "/");
    await page.locator("#nieuwe-voorbeelden .card").first().waitFor();
    // The skip link comes first and moves focus to the content.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement.id), "inhoud");
    // Menu links work from the keyboard, and focus lands on the new page's heading.
    await page.locator('nav a[href="/brigadiers"]').focus();
    await page.keyboard.press("Enter");
    await page.locator("h1", { hasText: "Brigadiers" }).waitFor();
    await page.locator("#lijst .card").first().waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.tagName), "H1");
    assert.equal(await page.locator('nav a[aria-current="page"]').textContent(), "Brigadiers");
    await checkAccessibility(page, "brigadiers");
    await screenshot(page, "brigadiers");

    // Filter the directory by availability: every card shown says so.
    await page.getByLabel("Beschikbaarheid").selectOption("beschikbaar");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("availability") === "beschikbaar");
    await page.waitForFunction(() => [...document.querySelectorAll("#lijst .card .meta")].every((m) => m.textContent.includes("Beschikbaar")));

    await page.locator("#lijst .card h3 a").first().click();
    await page.locator(".facts dt", { hasText: "Expertise" }).waitFor();
    await checkAccessibility(page, "brigadier profile");

    await page.goto(node.url + "/scholen");
    await page.locator("#lijst .card").first().waitFor();
    await checkAccessibility(page, "schools");
    await page.locator("#lijst .card h3 a", { hasText: "Murmellius" }).first().click();
    await page.locator("h2", { hasText: "Mooie voorbeelden van deze school" }).waitFor();
    assert.ok(await page.locator(`a[href="/voorbeelden/${intermezzo.id}"]`).count(), "the school's case");
    await checkAccessibility(page, "school");

    await page.goto(node.url + "/hulpvragen");
    await page.locator("#lijst .card").first().waitFor();
    await checkAccessibility(page, "help requests");
    await page.getByLabel("Stand").selectOption("open");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("state") === "open");
    await page.locator("#lijst .card h3 a").first().click();
    await page.locator("h2", { hasText: "Brigadiers die passen bij deze hulpvraag" }).waitFor();
    assert.ok(await page.locator('section a[href^="/brigadiers/"]').count() >= 1, "matching brigadiers");
    await checkAccessibility(page, "help request");
    await screenshot(page, "help-request");
    noProblems(page);
    await context.close();
  });

  test("errors from the API are sentences, not JSON", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(`${node.url}/voorbeelden/01KDVDNA0000000000000000ZZ`);
    const alert = page.getByRole("alert");
    await alert.waitFor();
    assert.equal(await alert.textContent(), "Deze pagina of dit record bestaat niet (meer).");
    assert.ok(!(await page.locator("main").textContent()).includes("{"), "no JSON shown");
    await checkAccessibility(page, "not found");
    noProblems(page, [/404/]);
    await context.close();
  });
});

describe("writing, moderation and live updates", () => {
  test("a school editor's lesson, published by a moderator, appears live for a reader", async () => {
    const reader = await browser.newContext();
    const home = await openPage(reader);
    await home.goto(node.url + "/");
    await home.getByText("Live: nieuwe bijdragen verschijnen vanzelf.").waitFor();
    await home.evaluate(() => { window.notReloaded = true; });

    const editorContext = await browser.newContext();
    const editor = await openPage(editorContext);
    await signInThroughForm(editor, "murmellius");
    await editor.goto(`${node.url}/voorbeelden/${intermezzo.id}`);
    await editor.getByRole("link", { name: "Geleerde les toevoegen" }).click();
    await editor.locator("h1", { hasText: "Nieuwe geleerde les" }).waitFor();
    await checkAccessibility(editor, "lesson form");

    // Without a title the node refuses; its Dutch message stands next to the field.
    await editor.getByLabel("Wat heeft de school geleerd?").fill("Ouders willen meedenken als je ze vroeg betrekt.");
    await editor.getByRole("button", { name: "Opslaan als concept" }).click();
    const titleError = editor.locator('.field[data-path="title"] .field-error');
    await titleError.waitFor();
    assert.equal(await titleError.textContent(), "is verplicht");
    assert.equal(await editor.getByLabel("Titel").getAttribute("aria-invalid"), "true");
    await checkAccessibility(editor, "lesson form with errors");
    await screenshot(editor, "lesson-form-errors");

    const title = `Vroeg betrekken werkt ${Date.now()}`;
    await editor.getByLabel("Titel").fill(title);
    await editor.getByLabel("4. Onderzoekende en waarderende houding van alle betrokkenen").check();
    await editor.getByLabel("1. Beweging begint in de praktijk").check();
    await editor.getByRole("button", { name: "Opslaan als concept" }).click();
    await editor.getByText("Opgeslagen als concept. Een moderator van de regio publiceert het.").waitFor();
    assert.match(editor.url(), /\/lessen\/[0-9A-Z]{26}$/);
    const lessonId = editor.url().split("/").pop();
    assert.ok(await editor.locator(".badge.draft").count(), "marked as draft");
    await editor.goto(node.url + "/concepten");
    await editor.locator("#concepten .card", { hasText: title }).waitFor();
    await checkAccessibility(editor, "drafts");

    // The reader does not see the draft.
    assert.equal(await home.locator(`#nieuwe-lessen [data-id="${lessonId}"]`).count(), 0);

    const moderatorContext = await browser.newContext();
    const moderator = await openPage(moderatorContext);
    await signInThroughForm(moderator, "moderator");
    await moderator.getByRole("link", { name: "Beoordelen" }).click();
    const item = moderator.locator("#concepten .card", { hasText: title });
    await item.waitFor();
    await checkAccessibility(moderator, "review queue");
    await screenshot(moderator, "review");
    const published = Date.now();
    await item.getByRole("button", { name: `Publiceren: ${title}` }).click();
    await moderator.getByText(`Gepubliceerd: ${title}`).waitFor();

    const arrived = home.locator(`#nieuwe-lessen [data-id="${lessonId}"]`);
    await arrived.waitFor({ timeout: 10000 });
    recordFigure("publish_to_live_on_home_ms", Date.now() - published);
    assert.equal(await arrived.locator("h3").textContent(), title);
    assert.ok(await home.evaluate(() => window.notReloaded), "arrived without a reload");
    await checkAccessibility(home, "home after a live update");
    for (const page of [home, editor, moderator]) noProblems(page);
    await Promise.all([reader.close(), editorContext.close(), moderatorContext.close()]);
  });

  test("a school editor writes a case with its scan, seeing similar cases first", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await signInThroughForm(page, "murmellius");
    await page.getByRole("link", { name: "Nieuw mooi voorbeeld" }).click();
    await page.locator("h1", { hasText: "Nieuw mooi voorbeeld" }).waitFor();
    await page.getByLabel("Titel").fill("Een tussenjaar voor jonge leerlingen in de onderbouw");
    await page.getByLabel("Samenvatting").fill("Jongeren die de basisschool hebben afgerond maar nog niet klaar zijn voor het vo krijgen een tussenjaar.");
    // Duplicates show before submitting.
    await page.locator(".similar .card", { hasText: intermezzo.title }).waitFor();
    const similar = await page.locator(".similar .card").evaluateAll((cards) => cards.map((c) => c.dataset.kind));
    assert.ok(similar.length <= 5 && similar.every((k) => k === "case"), `at most five similar cases (${similar})`);
    await page.getByLabel("Fase").selectOption("adoptie");
    const doel = page.locator('.scan-level[data-block="doel"][data-level="innovatieteam"]');
    await doel.locator("select").selectOption("4");
    await doel.locator("textarea").fill("Het team wil dit samen.");
    await page.locator('.scan-level[data-block="contact"][data-level="omgeving"] select').selectOption("2");
    await checkAccessibility(page, "case form");
    await screenshot(page, "case-form");
    await page.getByRole("button", { name: "Opslaan als concept" }).click();
    await page.getByText("Opgeslagen als concept.", { exact: false }).waitFor();
    const id = page.url().split("/").pop();
    const stored = await node.api("GET", `/api/v1/cases/${id}`, { token: await node.token("murmellius") });
    assert.equal(stored.data.status, "draft");
    assert.deepEqual(stored.data.scan, { doel: { innovatieteam: { score: 4, note: "Het team wil dit samen." } }, contact: { omgeving: { score: 2 } } });
    assert.equal(await page.locator(".scan-chart .bar").count(), 2, "its scan drawn");

    // Editing it again: a stale version is refused with a readable message, nothing lost.
    await page.getByRole("link", { name: "Bewerken" }).click();
    await page.getByLabel("Titel").waitFor();
    const token = await node.token("moderator");
    const current = await node.api("GET", `/api/v1/cases/${id}`, { token });
    const meanwhile = { ...current.data, team: "Twee mentoren" };
    for (const k of ["id", "kind", "origin", "version", "created", "updated", "author", "status"]) delete meanwhile[k];
    assert.equal((await fetch(`${node.url}/api/v1/cases/${id}`, { method: "PUT", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "If-Match": current.etag }, body: JSON.stringify(meanwhile) })).status, 200);
    await page.getByLabel("Team", { exact: true }).fill("Drie mentoren");
    await page.getByRole("button", { name: "Opslaan als concept" }).click();
    await page.locator(".form-summary", { hasText: "Iemand anders heeft dit intussen gewijzigd" }).waitFor();
    assert.equal(await page.getByLabel("Team", { exact: true }).inputValue(), "Drie mentoren", "the user's text is kept");
    noProblems(page, [/412/]);
    await context.close();
  });

  test("a brigadier takes up an open help request", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await signInThroughForm(page, "brigadier");
    const open = await node.api("GET", "/api/v1/requests?state=open&limit=1");
    const request = open.data.items[0];
    await page.goto(`${node.url}/hulpvragen/${request.id}`);
    await page.getByRole("button", { name: "Ik pak deze hulpvraag op" }).click();
    await page.getByText("Je hebt deze hulpvraag opgepakt.").waitFor();
    assert.ok(await page.locator(".facts dd", { hasText: "Opgepakt" }).count(), "its state is shown");
    assert.equal(await page.getByRole("button", { name: "Ik pak deze hulpvraag op" }).count(), 0, "no second take-up");
    const stored = await node.api("GET", `/api/v1/requests/${request.id}`);
    assert.equal(stored.data.state, "opgepakt");
    const account = await node.api("GET", "/api/v1/session", { token: await node.token("brigadier") });
    assert.equal(stored.data.taken_by, account.data.person);
    await checkAccessibility(page, "help request taken up");
    noProblems(page);
    await context.close();
  });

  test("a brigadier writes a visit note from a school's page; the school reads the draft, the moderator publishes it", async () => {
    const murmellius = "01KDVDNA081M10000000000008";
    const context = await browser.newContext();
    const page = await openPage(context);
    await signInThroughForm(page, "brigadier");
    await page.goto(`${node.url}/scholen/${murmellius}`);
    const visits = page.locator("#bezoeken");
    await visits.getByRole("heading", { name: "Bezoekverslagen van brigadiers bij deze school" }).waitFor();
    await checkAccessibility(page, "school page with visit notes");
    await visits.getByRole("link", { name: "Bezoekverslag schrijven" }).click();
    await page.getByRole("heading", { name: "Nieuw bezoekverslag" }).waitFor();
    assert.equal(await page.getByLabel("Welke school heb je bezocht?").inputValue(), murmellius, "the school is chosen");
    await page.getByLabel("Titel").fill("Derde gesprek over het tussenjaar");
    await page.getByLabel("Datum van het bezoek").fill("");
    await page.getByLabel("Wat heb je gezien en besproken?").fill("Het team bespreekt hoe ouders en leerlingen meepraten over het Intermezzo-jaar.");
    await page.getByLabel("Wat heb je geadviseerd?").fill("Een gespreksronde met leerlingen aan het eind van elk semester.");
    await page.getByLabel("Welk mooi voorbeeld is besproken?").selectOption({ label: intermezzo.title });
    await page.getByLabel(/^1\. Werken vanuit/).check();
    await checkAccessibility(page, "visit note form");
    // Without a date the node refuses the note and says so next to the field.
    await page.getByRole("button", { name: "Opslaan als concept" }).click();
    const dateError = page.locator('.field[data-path="date"] .field-error');
    await dateError.waitFor();
    assert.match(await dateError.textContent(), /is verplicht/);
    await checkAccessibility(page, "visit note form with an error");
    await page.getByLabel("Datum van het bezoek").fill("2026-03-12");
    await page.getByRole("button", { name: "Opslaan als concept" }).click();
    await page.getByRole("heading", { name: "Derde gesprek over het tussenjaar" }).waitFor();
    assert.match(page.url(), /\/bezoeken\/[0-9A-Z]{26}$/);
    const id = page.url().split("/").pop();
    await page.getByText("Opgeslagen als concept").waitFor();
    assert.ok(await page.locator(".badge.draft").count(), "shown as a draft");
    assert.ok(await page.getByRole("heading", { name: "Advies van de brigadier" }).count(), "the advice has its heading");
    assert.ok(await page.locator(".facts dd", { hasText: "12 maart 2026" }).count(), "the date in words");
    assert.ok(await page.locator(".facts dd", { hasText: "Joost Timmermans" }).count(), "the brigadier is named");
    await checkAccessibility(page, "visit note (draft)");
    const stored = await node.api("GET", `/api/v1/visits/${id}`, { token: await node.token("brigadier") });
    assert.equal(stored.data.status, "draft");
    assert.equal(stored.data.case, intermezzo.id);
    assert.deepEqual(stored.data.bouwstenen, ["doel"]);

    // The school visited sees the draft among its drafts.
    const editorContext = await browser.newContext();
    const editor = await openPage(editorContext);
    await signInThroughForm(editor, "murmellius");
    await editor.goto(`${node.url}/concepten`);
    await editor.locator(`#concepten [data-id="${id}"]`).waitFor();
    await editor.goto(`${node.url}/bezoeken/${id}`);
    await editor.getByRole("heading", { name: "Derde gesprek over het tussenjaar" }).waitFor();
    assert.equal(await editor.getByRole("link", { name: "Verslag bewerken" }).count(), 0, "the school cannot edit it");

    // The moderator publishes it from the review queue; then the public reads it.
    const moderatorContext = await browser.newContext();
    const moderator = await openPage(moderatorContext);
    await signInThroughForm(moderator, "moderator");
    await moderator.goto(`${node.url}/beoordelen`);
    await moderator.locator(`#concepten [data-id="${id}"]`).getByRole("button", { name: "Publiceren" }).click();
    await moderator.getByText("Gepubliceerd: Derde gesprek over het tussenjaar").waitFor();
    const readerContext = await browser.newContext();
    const reader = await openPage(readerContext);
    await reader.goto(`${node.url}/scholen/${murmellius}`);
    await reader.locator(`#bezoeken [data-id="${id}"]`).waitFor();
    await reader.locator(`#bezoeken [data-id="${id}"] a`).first().click();
    await reader.getByRole("heading", { name: "Derde gesprek over het tussenjaar" }).waitFor();
    assert.equal(await reader.locator(".badge.draft").count(), 0, "published");
    await checkAccessibility(reader, "visit note (published)");
    for (const p of [page, editor, moderator, reader]) noProblems(p);
    for (const c of [context, editorContext, moderatorContext, readerContext]) await c.close();
  });

  test("after a dropped connection the page reconnects and catches up", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(node.url + "/");
    await page.getByText("Live: nieuwe bijdragen verschijnen vanzelf.").waitFor();
    await page.evaluate(() => { window.notReloaded = true; });
    const { dataDir, port } = node;
    const exit = await node.stop();
    assert.equal(exit.code, 0);
    await page.getByText("Verbinding verbroken; opnieuw verbinden…").waitFor();
    node = await new Node({ dataDir, port }).start();
    node.ownDir = true; // remove the directory at the end
    const token = await node.token("moderator");
    const title = `Gedeeld in de regio ${Date.now()}`;
    const created = await node.api("POST", "/api/v1/lessons", { token, body: { title, body: "Wat werkt, delen we op de regiodag.", school: intermezzo.schools[0], case: intermezzo.id } });
    assert.equal(created.status, 201);
    const arrived = page.locator(`#nieuwe-lessen [data-id="${created.data.id}"]`);
    await arrived.waitFor({ timeout: 45000 });
    await page.getByText("Live: nieuwe bijdragen verschijnen vanzelf.").waitFor();
    assert.ok(await page.evaluate(() => window.notReloaded), "caught up without a reload");
    noProblems(page, [/WebSocket/, /ERR_CONNECTION_REFUSED/]);
    await context.close();
  });
});

describe("qualities", () => {
  test("English as a switch, kept across pages, with the node's messages in English", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await page.goto(node.url + "/");
    await page.getByRole("button", { name: "Switch to English" }).click();
    await page.locator("h1", { hasText: "Sharing knowledge between schools" }).waitFor();
    assert.equal(await page.locator("html").getAttribute("lang"), "en");
    await checkAccessibility(page, "home in English");
    await page.goto(`${node.url}/voorbeelden/${intermezzo.id}`);
    await page.locator("h2", { hasText: "Bouwstenen scan" }).waitFor();
    await page.goto(`${node.url}/inloggen`);
    await page.getByLabel("Username").fill("murmellius");
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#uitloggen").waitFor();
    await page.goto(`${node.url}/lessen/nieuw`);
    await page.getByRole("button", { name: "Save as draft" }).click();
    const error = page.locator('.field[data-path="title"] .field-error');
    await error.waitFor();
    assert.equal(await error.textContent(), "is required");
    await page.getByRole("button", { name: "Schakel naar Nederlands" }).click();
    await page.locator("h1", { hasText: "Nieuwe geleerde les" }).waitFor();
    noProblems(page);
    await context.close();
  });

  test("works from 360 px wide", async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    const page = await openPage(context);
    for (const path of ["/", `/voorbeelden/${intermezzo.id}`, "/zoeken?q=verzuim", "/brigadiers"]) {
      await page.goto(node.url + path);
      await page.locator("main h1").waitFor();
      await page.waitForFunction(() => !document.querySelector("main[aria-busy]"));
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 360, `${path} fits 360 px (is ${width})`);
      await checkAccessibility(page, `${path} at 360 px`);
    }
    await page.goto(`${node.url}/voorbeelden/${intermezzo.id}`);
    await page.locator(".scan-chart").waitFor();
    await screenshot(page, "case-360px");
    noProblems(page);
    await context.close();
  });

  test("the admin's node page: log head, counts, accounts", async () => {
    const context = await browser.newContext();
    const page = await openPage(context);
    await signInThroughForm(page, "admin");
    await page.getByRole("link", { name: "Knooppunt" }).click();
    await page.locator("h2", { hasText: "Ondertekende kop van het log" }).waitFor();
    const info = await node.api("GET", "/api/v1/node");
    assert.ok(await page.getByText(info.data.id).count(), "node id");
    assert.ok(await page.getByText(info.data.head.hash).count(), "signed head hash");
    assert.match(await page.locator("#origins tbody").textContent(), new RegExp(`${info.data.id} \\(dit knooppunt\\)`), "its own log among the logs it holds");
    assert.ok(await page.locator("table.data tbody tr").count() >= 5, "the demo accounts");
    await checkAccessibility(page, "node page");
    await screenshot(page, "node");
    await page.locator("#uitloggen").click();
    await page.locator("#inloggen").waitFor();
    noProblems(page);
    await context.close();
  });
});
