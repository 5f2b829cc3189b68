/* A job checked by the rules of POST /api/submit, with its messages (the browser tests hold the two
   to each other). */

const VISIT_TIME_RE = new RegExp(
  "^(\\d{4})-?(\\d{2})-?(\\d{2})[Tt](\\d{2})(?::?(\\d{2})(?::?(\\d{2})(?:[.,]\\d+)?)?)?" +
    "(?:[Zz]|[+-](\\d{2})(?::?(\\d{2})(?::?(\\d{2})(?:\\.\\d+)?)?)?)?$",
);

export function isVisitTime(value) {
  if (typeof value !== "string" || value.length > 64) return false;
  const m = VISIT_TIME_RE.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second, offH, offM, offS] = m.slice(1).map((v) => (v ? Number(v) : 0));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return (
    year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth &&
    hour <= 23 && minute <= 59 && second <= 59 && offH <= 23 && offM <= 59 && offS <= 59
  );
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
  }
  if (!isVisitTime(visit.visit_time)) {
    return `${where}.visit_time: must be an ISO 8601 date-time, e.g. 2024-03-15T10:00:00Z`;
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
