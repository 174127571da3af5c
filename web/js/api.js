// The node's REST API as seen from the browser. Every failure becomes an ApiError whose
// `message` is a sentence for people (never raw JSON); the node's field errors are kept in
// `fields` so forms can put each one next to its field.

import { lang, t } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, message, problem) {
    super(message);
    this.status = status;
    this.problem = problem || null;
    this.fields = (problem && Array.isArray(problem.errors)) ? problem.errors : [];
  }
}

function messageFor(status, problem) {
  const detail = (problem && (problem.detail || problem.title)) || "";
  switch (status) {
  case 401: return t("error.signin");
  case 403: return t("error.forbidden");
  case 404: return t("error.notfound");
  case 410: return t("error.gone");
  case 409: return t("error.conflict", { detail });
  case 412: return t("edit.stale");
  case 422: return t("edit.fix");
  case 429: case 503: return t("error.busy");
  default:
    if (status >= 500) return t("error.server", { status });
    return t("error.bad", { detail });
  }
}

// request("GET", "/api/v1/cases", {query: {phase: "adoptie"}, body, headers, signal})
// → {data, etag, status}. The session cookie travels by itself (same origin).
export async function request(method, path, options = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(options.query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of [value].flat()) url.searchParams.append(key, String(one));
  }
  const headers = { Accept: "application/json", "Accept-Language": lang() === "en" ? "en, nl;q=0.5" : "nl, en;q=0.5", ...options.headers };
  const init = { method, headers, credentials: "same-origin", signal: options.signal };
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, t("error.network"));
  }
  if (response.status === 204) return { data: null, etag: null, status: 204 };
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch (error) {
      // An abort while the body is still arriving is the caller's choice, not a bad answer:
      // hand it back as such, or the caller would take null for the result.
      if (error.name === "AbortError") throw error;
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, messageFor(response.status, data), data);
  return { data, etag: response.headers.get("ETag"), status: response.status };
}

export const get = async (path, query, options = {}) => (await request("GET", path, { ...options, query })).data;

// Names of schools and regions, looked up once per page view and shared by every card that
// shows them. A failed lookup (a draft, a record from a node not reachable) shows the id.
const names = new Map();
export async function nameOf(collection, id) {
  if (!id) return "";
  const key = `${collection}/${id}`;
  if (!names.has(key)) {
    names.set(key, get(`/api/v1/${collection}/${encodeURIComponent(id)}`)
      .then((record) => record.name || record.title || id)
      .catch(() => id));
  }
  return names.get(key);
}

export function forgetName(collection, id) {
  names.delete(`${collection}/${id}`);
}
