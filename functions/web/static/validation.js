/* A job checked by the rules of POST /api/submit, with its messages (the browser tests hold the two
   to each other). */

// RFC 3339 date-time (section 5.6; a space may stand for "T"), the offset optional (none = UTC), as
// the API's retail_pulse/domain/clock.py. JavaScript's \d is ASCII only, like the API's [0-9].
const VISIT_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))?$/;

function daysInMonth(year, month) {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

export function isVisitTime(value) {
  if (typeof value !== "string" || value.length > 64) return false;
  const m = VISIT_TIME_RE.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const [offH, offM] = [m[8] ? Number(m[8]) : 0, m[9] ? Number(m[9]) : 0];
  if (!(year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month))) return false;
  if (hour > 23 || minute > 59 || second > 60 || offH > 23 || offM > 59) return false;
  // In UTC it must stay within years 1-9999; a leap second only at 23:59:60 UTC on a month's last day.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  local.setUTCHours(hour, minute, Math.min(second, 59), 0);
  const utc = new Date(local.getTime() - (m[7] === "-" ? -1 : 1) * (offH * 60 + offM) * 60000);
  const utcYear = utc.getUTCFullYear();
  if (utcYear < 1 || utcYear > 9999) return false;
  if (second === 60) {
    const lastDay = daysInMonth(utcYear, utc.getUTCMonth() + 1);
    return utc.getUTCDate() === lastDay && utc.getUTCHours() === 23 && utc.getUTCMinutes() === 59;
  }
  return true;
}

export function isHttpUrl(value) {
  if (typeof value !== "string" || /\s/.test(value)) return false;
  const m = /^(https?):\/\/([^/?#]*)/i.exec(value);
  if (!m) return false;
  const authority = m[2].slice(m[2].lastIndexOf("@") + 1);
  let host = authority;
  let port = "";
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) return false;
    host = authority.slice(1, close);
    port = authority.slice(close + 1).replace(/^:/, "");
  } else if (authority.includes(":")) {
    host = authority.slice(0, authority.indexOf(":"));
    port = authority.slice(authority.indexOf(":") + 1);
  }
  if (port && !(/^\d+$/.test(port) && Number(port) <= 65535)) return false;
  return host.length > 0;
}

/** Whether the URL's authority carries a userinfo part (`user:password@`, `token@`): the API refuses it. */
export function hasCredentials(value) {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(value);
  return m !== null && m[1].includes("@");
}

/** null when the job would be accepted, else the message the API would answer with. */
export function validateJob(data) {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return "body: expected a JSON object";
  if (!("count" in data)) return "count: required";
  const count = data.count;
  if (typeof count !== "number" || !Number.isInteger(count)) return "count: must be an integer";
  if (!("visits" in data)) return "visits: required";
  const visits = data.visits;
  if (!Array.isArray(visits)) return "visits: must be a list";
  if (visits.length === 0) return "visits: must not be empty";
  if (count !== visits.length) return `count: ${count} does not match the number of visits (${visits.length})`;
  for (let i = 0; i < visits.length; i++) {
    const problem = validateVisit(visits[i], `visits[${i}]`);
    if (problem) return problem;
  }
  return null;
}

function validateVisit(visit, where) {
  if (visit === null || typeof visit !== "object" || Array.isArray(visit)) return `${where}: must be an object`;
  for (const key of ["store_id", "image_url", "visit_time"]) {
    if (!(key in visit)) return `${where}.${key}: required`;
  }
  if (typeof visit.store_id !== "string" || !visit.store_id.trim()) {
    return `${where}.store_id: must be a non-empty string`;
  }
  const urls = visit.image_url;
  if (!Array.isArray(urls) || urls.length === 0) return `${where}.image_url: must be a non-empty list of URLs`;
  for (let j = 0; j < urls.length; j++) {
    if (!isHttpUrl(urls[j])) return `${where}.image_url[${j}]: must be an absolute http(s) URL`;
    if (hasCredentials(urls[j])) return `${where}.image_url[${j}]: must not contain credentials (user:password@)`;
  }
  if (!isVisitTime(visit.visit_time)) {
    return `${where}.visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z`;
  }
  return null;
}

/** The job in `text` (JSON) as an object, or throws with the API's message for bad JSON. */
export function parseJobText(text) {
  if (!text.trim()) throw new Error("body: expected a JSON object");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error("body: not valid JSON");
  }
}
