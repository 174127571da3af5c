// What the browser tests stand on: real olievlekd processes on loopback (each with its own data
// directory), Debian's Chromium driven by playwright-core, axe-core for accessibility, and a
// place for screenshots and measured figures (OV_ARTIFACT_DIR).

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
export const SOURCE_DIR = process.env.OV_SOURCE_DIR || join(here, "..", "..");
export const BINARY = process.env.OLIEVLEKD || join(SOURCE_DIR, "build", "olievlekd");
export const ARTIFACTS = process.env.OV_ARTIFACT_DIR || join(SOURCE_DIR, "tests", "artifacts", "browser");
export const PASSWORD = "olievlek-demo";
const CHROMIUM = process.env.OV_CHROMIUM || "/usr/bin/chromium";
const AXE = require.resolve("axe-core/axe.min.js");

// One node process. start() resolves once the node logs node.ready with the port it bound.
export class Node {
  constructor({ dataDir = null, port = 0, demo = true } = {}) {
    this.ownDir = !dataDir;
    this.dataDir = dataDir || mkdtempSync(join(tmpdir(), "olievlek-browser-"));
    this.port = port;
    this.demo = demo;
    this.log = [];
  }

  start(timeoutMs = 60000) {
    const args = ["--listen", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, "--web-root", join(SOURCE_DIR, "web"), "--log-level", "info"];
    if (this.demo) args.push("--demo");
    this.process = spawn(BINARY, args, { stdio: ["ignore", "ignore", "pipe"] });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node not ready in ${timeoutMs} ms:\n${this.log.slice(-30).join("\n")}`)), timeoutMs);
      let rest = "";
      this.process.stderr.on("data", (chunk) => {
        rest += chunk.toString("utf8");
        let newline;
        while ((newline = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, newline);
          rest = rest.slice(newline + 1);
          this.log.push(line);
          if (this.log.length > 2000) this.log.shift();
          try {
            const entry = JSON.parse(line);
            if (entry.event === "node.ready") {
              this.port = Number(entry.port);
              clearTimeout(timer);
              resolve(this);
            }
          } catch (_) { /* not a log line of ours */ }
        }
      });
      this.process.on("exit", (code, signal) => {
        this.exit = { code, signal };
        clearTimeout(timer);
        reject(new Error(`node exited (${code ?? signal}) before it was ready:\n${this.log.slice(-30).join("\n")}`));
      });
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  // SIGTERM and wait; the node finishes acknowledged work first. Its exit status must be 0
  // (under the sanitizers a leak or error would make it otherwise).
  async stop(timeoutMs = 30000) {
    if (!this.process || this.exit) return this.exit;
    const exited = new Promise((resolve) => this.process.once("exit", (code, signal) => resolve({ code, signal })));
    this.process.kill("SIGTERM");
    const result = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
    if (!result) { this.process.kill("SIGKILL"); throw new Error("node did not stop on SIGTERM"); }
    this.exit = result;
    return result;
  }

  cleanup() {
    if (this.process && !this.exit) this.process.kill("SIGKILL");
    if (this.ownDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  // A JSON API call from the test itself (not through the browser), e.g. to set up data.
  async api(method, path, { body, token } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, data: text ? JSON.parse(text) : null, etag: response.headers.get("etag") };
  }

  async token(username) {
    const answer = await this.api("POST", "/api/v1/session", { body: { username, password: PASSWORD } });
    assert.equal(answer.status, 201, `sign-in of ${username}`);
    return answer.data.token;
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container needs --no-sandbox; the rest keeps Chromium from reaching for Google's
    // hosts, which this network refuses.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions"],
  });
}

// A page that fails the test on any script error or console error it shows.
export async function openPage(context, trackErrors = true) {
  const page = await context.newPage();
  page.problems = [];
  if (trackErrors) {
    page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
    // The browser logs every 4xx as a console error, though a 422 for a form or a 404 for a
    // removed record is the page working; answers are judged below instead: any failed file of
    // the web client, and any 5xx, is a problem.
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) page.problems.push(`console: ${message.text()}`);
    });
    page.on("response", (response) => {
      const path = new URL(response.url()).pathname;
      if (response.status() >= 500 || (response.status() >= 400 && !path.startsWith("/api/"))) page.problems.push(`answer ${response.status()} for ${path}`);
    });
  }
  return page;
}

export function noProblems(page, allowed = []) {
  const left = page.problems.filter((p) => !allowed.some((pattern) => pattern.test(p)));
  assert.deepEqual(left, [], "no script or console errors");
  page.problems.length = 0;
}

// axe-core's WCAG 2.0/2.1 A and AA rules on the page as it is now: no violation allowed.
export async function checkAccessibility(page, what) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(async () => {
    const out = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] }, resultTypes: ["violations"] });
    return out.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`) }));
  });
  assert.deepEqual(result, [], `axe violations on ${what}:\n${JSON.stringify(result, null, 2)}`);
}

export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const figures = {};
export function recordFigure(name, value) {
  figures[name] = value;
  console.log(`figure: ${name} = ${JSON.stringify(value)}`);
}

export function writeFigures() {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(join(ARTIFACTS, "figures.json"), `${JSON.stringify(figures, null, 2)}\n`);
}

export function available() {
  return existsSync(BINARY) && existsSync(CHROMIUM);
}
