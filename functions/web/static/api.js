/* The API: its base URL and key (this browser's settings), and every call to it. */

import { API_KEY_KEY, SETTINGS_KEY, storageGet, storageSet } from "./storage.js?v=__ASSET_VERSION__";

export function defaultApiBase() {
  return new URL(".", window.location.href).href;
}

/** The base URL as the user configured it ("": this page's own address). */
export const configuredApiBase = () => storageGet(SETTINGS_KEY, "");
export const configuredApiKey = () => storageGet(API_KEY_KEY, "");

export function apiBase() {
  const configured = configuredApiBase();
  if (!configured) return defaultApiBase();
  return configured.endsWith("/") ? configured : configured + "/";
}

/** Keeps the base URL and key in this browser; empty ones are forgotten. */
export function saveApiSettings(base, key) {
  storageSet(SETTINGS_KEY, base || null);
  storageSet(API_KEY_KEY, key || null);
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** What to tell the user about a failed call: the API's answer, or why it could not be reached. */
export const apiErrorText = (e) => (e.status ? `The API answered ${e.status}: ${e.message}` : e.message);

/** GET/POST `path` (relative to the API base); resolves to {status, body, serverSkewMs}. */
export async function api(path, params, init) {
  const url = new URL(path, apiBase());
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
  }
  let response;
  try {
    const apiKey = configuredApiKey();
    const headers = { ...((init && init.headers) || {}), ...(apiKey ? { "x-api-key": apiKey } : {}) };
    response = await fetch(url, { cache: "no-store", ...init, headers });
  } catch (e) {
    throw new ApiError(0, `Could not reach the API at ${url.origin} (${e.message})`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    // The server's own words when it gave any: they name the field at fault.
    const detail = body && typeof body.error === "string" ? body.error : text.slice(0, 300) || response.statusText;
    throw new ApiError(response.status, detail, body);
  }
  const date = Date.parse(response.headers.get("Date") || "");
  return { status: response.status, body, serverSkewMs: Number.isNaN(date) ? 0 : date - Date.now() };
}
