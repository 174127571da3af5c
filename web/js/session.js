// Who is signed in. The node keeps the session in an HttpOnly cookie, so the page cannot read
// the token; it asks the node (GET /api/v1/session) once at start and after signing in or out.

import { request, ApiError } from "./api.js";

let account = null;
const listeners = new Set();

// Whether this browser signed in, so anonymous visitors (most of them) are not sent a 401 on
// every page load. Shared by the tabs of one browser; a stale mark costs one 401 and is cleared.
const MARK = "olievlek.signed-in";
function marked() {
  try { return localStorage.getItem(MARK) === "1"; } catch (_) { return true; }
}
function mark(on) {
  try { if (on) localStorage.setItem(MARK, "1"); else localStorage.removeItem(MARK); } catch (_) { /* not kept */ }
}

export function currentAccount() {
  return account;
}

export function onAccountChange(listener) {
  listeners.add(listener);
}

function announce() {
  for (const listener of listeners) listener(account);
}

export async function loadAccount() {
  if (!marked()) {
    account = null;
    announce();
    return account;
  }
  try {
    account = (await request("GET", "/api/v1/session")).data;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    account = null;
    mark(false);
  }
  announce();
  return account;
}

export async function signIn(username, password) {
  const answer = (await request("POST", "/api/v1/session", { body: { username, password } })).data;
  account = answer.account;
  mark(true);
  announce();
  return account;
}

export async function signOut() {
  try {
    await request("DELETE", "/api/v1/session");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
  account = null;
  mark(false);
  announce();
}

// What the account may do, mirroring docs/roles.md, to decide which buttons to show. The node
// decides for real; a button shown in error ends in a readable 403.
export function mayEditCase(record) {
  if (!account) return false;
  if (account.role === "admin") return true;
  if (account.role === "moderator") return !record.region || record.region === account.region;
  if (account.role === "school-editor") {
    const schools = record.schools || (record.school ? [record.school] : []);
    return schools.includes(account.school);
  }
  return false;
}

export const mayPublish = () => account && (account.role === "moderator" || account.role === "admin");
export const isSchoolEditor = () => account && account.role === "school-editor";
export const isBrigadier = () => account && account.role === "brigadier";
