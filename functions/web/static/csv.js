/* CSV in (a job from a file, one row per image) and out (results for a spreadsheet). */

/** RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte-order mark is not data
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ""));
}

const CSV_COLUMNS = ["store_id", "image_url", "visit_time"];

/** CSV (one row per image) -> job: rows with the same (store_id, visit_time) make one visit. */
export function csvToJob(text) {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new Error("CSV: the file is empty");
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const index = {};
  for (const column of CSV_COLUMNS) {
    index[column] = header.indexOf(column);
    if (index[column] < 0) throw new Error(`CSV: missing column ${column} (the header must name ${CSV_COLUMNS.join(", ")})`);
  }
  if (rows.length === 1) throw new Error("CSV: no rows after the header");
  const visits = new Map();
  for (const row of rows.slice(1)) {
    const storeId = (row[index.store_id] || "").trim();
    const visitTime = (row[index.visit_time] || "").trim();
    const url = (row[index.image_url] || "").trim();
    const key = JSON.stringify([storeId, visitTime]);
    if (!visits.has(key)) visits.set(key, { store_id: storeId, image_url: [], visit_time: visitTime });
    visits.get(key).image_url.push(url);
  }
  return { count: visits.size, visits: [...visits.values()] };
}

function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  // A spreadsheet would run a cell starting with = + - @ as a formula.
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = "'" + text;
  return /[",\r\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

// The columns of the API's CSV export (retail_pulse/domain/exports.py): one file format for both.
const RESULT_COLUMNS = [
  "index", "store_id", "image_url", "visit_time", "status", "width", "height", "perimeter", "error", "error_class",
  "processed_at",
];

export function resultsToCsv(results) {
  const lines = [RESULT_COLUMNS.join(",")];
  for (const r of results) lines.push(RESULT_COLUMNS.map((c) => csvCell(r[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}
