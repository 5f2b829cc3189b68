/* Retail Pulse dashboard: submit jobs, watch them run, explore results and areas.
   Plain script, no build step, no third-party code. Every page element is built with the DOM API
   (textContent, never innerHTML with data), so nothing the API returns can inject markup. */
"use strict";

(function () {
  const SETTINGS_KEY = "retailPulse.apiBase";
  const API_KEY_KEY = "retailPulse.apiKey";
  const JOBS_KEY = "retailPulse.jobs";
  const MAX_REMEMBERED_JOBS = 200;
  const POLL_MS = 1000;
  const RESULTS_REFRESH_POLLS = 3; // while a job runs, its last results page reloads every 3rd poll
  const CSV_PAGE = 1000; // the API's largest results page
  const VISITS_PAGE = 1000;
  const RATE_WINDOW_MS = 10000; // the ETA uses the progress rate over this recent window

  // -- small DOM helpers ---------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function showMessage(node, text, kind) {
    node.textContent = text || "";
    node.className = "message" + (text ? " " + (kind || "info") : "");
  }

  const numberFormat = new Intl.NumberFormat("en-US");
  const fmtNumber = (n) => (n === null || n === undefined ? "–" : numberFormat.format(n));
  const fmtRate = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %");

  function fmtDuration(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return "–";
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    const s = Math.round(seconds);
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso || "–") : d.toLocaleString();
  }

  // -- settings and this browser's jobs --------------------------------------------------------
  function storageGet(key, fallback) {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback; // storage disabled or corrupt: behave as if empty
    }
  }

  function storageSet(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* private mode or full: the dashboard still works, it just forgets */
    }
  }

  function defaultApiBase() {
    return new URL(".", window.location.href).href;
  }

  function apiBase() {
    const configured = storageGet(SETTINGS_KEY, "");
    if (!configured) return defaultApiBase();
    return configured.endsWith("/") ? configured : configured + "/";
  }

  function rememberedJobs() {
    const jobs = storageGet(JOBS_KEY, []);
    return Array.isArray(jobs) ? jobs.filter((j) => j && typeof j.job_id === "string") : [];
  }

  function rememberJob(update) {
    const jobs = rememberedJobs();
    const existing = jobs.find((j) => j.job_id === update.job_id);
    if (existing) Object.assign(existing, update);
    else jobs.unshift({ submitted_at: new Date().toISOString(), ...update });
    storageSet(JOBS_KEY, jobs.slice(0, MAX_REMEMBERED_JOBS));
  }

  // -- the API ---------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** GET/POST `path` (relative to the API base); resolves to {status, body, serverSkewMs}. */
  async function api(path, params, init) {
    const url = new URL(path, apiBase());
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(key, value);
    }
    let response;
    try {
      const apiKey = storageGet(API_KEY_KEY, "");
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

  // -- job validation: the rules of POST /api/submit, with its messages -------------------------
  const VISIT_TIME_RE = new RegExp(
    "^(\\d{4})-?(\\d{2})-?(\\d{2})[Tt](\\d{2})(?::?(\\d{2})(?::?(\\d{2})(?:[.,]\\d+)?)?)?" +
      "(?:[Zz]|[+-](\\d{2})(?::?(\\d{2})(?::?(\\d{2})(?:\\.\\d+)?)?)?)?$",
  );

  function isVisitTime(value) {
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

  function isHttpUrl(value) {
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
  function validateJob(data) {
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
  function parseJobText(text) {
    if (!text.trim()) throw new Error("body: expected a JSON object");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error("body: not valid JSON");
    }
  }

  // -- CSV ---------------------------------------------------------------------------------------
  /** RFC 4180 rows: quoted fields may hold commas, quotes ("") and line breaks. */
  function parseCsv(text) {
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
  function csvToJob(text) {
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

  const RESULT_COLUMNS = [
    "store_id", "image_url", "visit_time", "status", "width", "height", "perimeter", "error", "processed_at",
  ];

  function resultsToCsv(results) {
    const lines = [RESULT_COLUMNS.join(",")];
    for (const r of results) lines.push(RESULT_COLUMNS.map((c) => csvCell(r[c])).join(","));
    return lines.join("\r\n") + "\r\n";
  }

  // -- routing -----------------------------------------------------------------------------------
  const VIEWS = ["submit", "jobs", "job", "areas", "settings"];
  let firstRoute = true;

  function route() {
    const parts = window.location.hash.replace(/^#\/?/, "").split("/");
    let view = VIEWS.includes(parts[0]) ? parts[0] : "submit";
    const jobId = view === "job" ? decodeURIComponent(parts.slice(1).join("/")) : "";
    if (view === "job" && !jobId) view = "jobs";
    for (const name of VIEWS) $("view-" + name).hidden = name !== view;
    const tab = view === "job" ? "jobs" : view;
    for (const link of document.querySelectorAll(".tabs a")) {
      if (link.dataset.view === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    if (view !== "job") jobView.stop();
    if (view === "jobs") showJobs();
    if (view === "job") jobView.open(jobId);
    if (view === "areas") showAreas();
    if (view === "settings") showSettings();
    document.title = `${$(view + "-title").textContent} · Retail Pulse`;
    // Move focus to the new view's heading so keyboard and screen-reader users land on it.
    if (!firstRoute) $(view + "-title").focus();
    firstRoute = false;
  }

  // -- Submit ------------------------------------------------------------------------------------
  function exampleJob() {
    const base = new URL(".", window.location.href).href;
    return {
      count: 2,
      visits: [
        {
          store_id: "RP00001",
          image_url: [base + "samples/shelf.jpg", base + "samples/front.png"],
          visit_time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
        { store_id: "RP00002", image_url: [base + "samples/aisle.webp"], visit_time: "2024-03-15T11:30:00+05:30" },
      ],
    };
  }

  async function onFilePicked(event) {
    const file = event.target.files[0];
    const message = $("submit-message");
    if (!file) return;
    try {
      const text = await file.text();
      const isCsv = /\.csv$/i.test(file.name) || file.type === "text/csv";
      const job = isCsv ? csvToJob(text) : parseJobText(text);
      $("job-json").value = JSON.stringify(job, null, 2);
      const problem = validateJob(job);
      if (problem) showMessage(message, `${file.name}: ${problem}`, "error");
      else showMessage(message, `${file.name}: ${job.count} visits, ${countImages(job)} images, ready to submit.`, "ok");
    } catch (e) {
      showMessage(message, `${file.name}: ${e.message}`, "error");
    }
  }

  const countImages = (job) => job.visits.reduce((n, v) => n + v.image_url.length, 0);

  async function onSubmit(event) {
    event.preventDefault();
    const message = $("submit-message");
    const button = $("submit-button");
    let job;
    try {
      job = parseJobText($("job-json").value);
    } catch (e) {
      return showMessage(message, `Not sent: ${e.message}`, "error");
    }
    const problem = validateJob(job);
    if (problem) return showMessage(message, `Not sent: ${problem}`, "error");
    button.disabled = true;
    showMessage(message, "Submitting…", "info");
    try {
      // The text as typed: the API is the judge of anything this page's checks let through.
      const { body } = await api("api/submit", null, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: $("job-json").value,
      });
      rememberJob({ job_id: body.job_id, total: body.total, status: "ongoing" });
      showMessage(message, `Accepted: job ${body.job_id} (${body.total} images).`, "ok");
      window.location.hash = "#/job/" + encodeURIComponent(body.job_id);
    } catch (e) {
      const prefix = e.status ? `The API answered ${e.status}: ` : "";
      showMessage(message, prefix + e.message, "error");
    } finally {
      button.disabled = false;
    }
  }

  // -- Jobs --------------------------------------------------------------------------------------
  let jobsRequest = 0;

  async function showJobs() {
    const request = ++jobsRequest;
    renderJobs(rememberedJobs(), "Jobs submitted or opened in this browser (kept in this browser only).");
    try {
      const { body } = await api("api/jobs");
      const jobs = Array.isArray(body) ? body : body && Array.isArray(body.jobs) ? body.jobs : null;
      if (jobs && request === jobsRequest) renderJobs(jobs, "All jobs, from the API.");
    } catch (e) {
      /* No jobs-list API on this deployment (403/404): this browser's own list stays. */
    }
  }

  function renderJobs(jobs, source) {
    $("jobs-source").textContent = source;
    const tbody = $("jobs-table").querySelector("tbody");
    tbody.replaceChildren(
      ...jobs.map((job) =>
        el(
          "tr",
          {},
          el("td", {}, el("a", { href: "#/job/" + encodeURIComponent(job.job_id), class: "mono" }, job.job_id)),
          el("td", {}, fmtTime(job.submitted_at || job.created_at)),
          el("td", { class: "num" }, fmtNumber(job.total ?? job.progress?.total)),
          el("td", {}, el("span", { class: "badge " + (job.status || ""), text: job.status || "–" })),
        ),
      ),
    );
    $("jobs-table").hidden = jobs.length === 0;
    $("jobs-empty").hidden = jobs.length > 0;
  }

  // -- One job: live status, errors, results ---------------------------------------------------
  const jobView = {
    jobId: null,
    generation: 0, // bumps whenever the view changes job, so stale polls drop their answers
    timer: null,
    samples: [],
    lastStatus: null,
    lastMilestone: -1,
    knownErrorStores: new Set(),
    polls: 0,
    pages: [null], // next_token of each page loaded so far
    pageIndex: 0,
    offsets: [0], // how many images precede each loaded page, for the row numbers
    rows: [],

    stop() {
      this.generation++;
      clearTimeout(this.timer);
      this.timer = null;
    },

    open(jobId) {
      if (jobId === this.jobId && this.timer) return; // already watching it
      this.stop();
      this.jobId = jobId;
      this.samples = [];
      this.lastStatus = null;
      this.lastMilestone = -1;
      this.knownErrorStores = new Set();
      this.polls = 0;
      $("job-id").textContent = jobId;
      showMessage($("job-message"), "");
      $("job-announce").textContent = "";
      $("errors-table").querySelector("tbody").replaceChildren();
      $("errors-table").hidden = true;
      $("errors-empty").hidden = false;
      $("errors-truncated").hidden = true;
      this.renderProgress(null);
      this.resetResults();
      this.poll(this.generation);
    },

    async poll(generation) {
      let answer;
      try {
        answer = await api("api/status", { jobid: this.jobId });
      } catch (e) {
        if (generation !== this.generation) return;
        if (e.status === 400) {
          showMessage($("job-message"), `The API answered 400: ${e.message}`, "error");
          $("job-status").textContent = "unknown";
          return; // an unknown job will not become known by asking again
        }
        showMessage($("job-message"), `${e.message}. Retrying…`, "error");
        this.timer = setTimeout(() => this.poll(generation), POLL_MS * 3);
        return;
      }
      if (generation !== this.generation) return;
      showMessage($("job-message"), "");
      const job = answer.body;
      this.polls++;
      this.renderProgress(job, answer.serverSkewMs);
      this.renderErrors(job);
      rememberJob({ job_id: job.job_id, total: job.progress.total, status: job.status });
      const finishedNow = this.lastStatus === "ongoing" && job.status !== "ongoing";
      this.lastStatus = job.status;
      if (job.status === "ongoing") {
        if (this.polls % RESULTS_REFRESH_POLLS === 0 && this.onLastPage()) this.loadPage(this.pageIndex);
        this.timer = setTimeout(() => this.poll(generation), POLL_MS);
      } else {
        this.timer = null;
        if (finishedNow && this.onLastPage()) this.loadPage(this.pageIndex);
      }
    },

    renderProgress(job, skewMs) {
      const bar = $("job-progress");
      if (!job) {
        $("job-status").textContent = "loading…";
        $("job-status").className = "badge";
        for (const id of ["job-total", "job-processed", "job-succeeded", "job-failed", "job-elapsed", "job-eta"]) {
          $(id).textContent = "–";
        }
        $("job-percent").textContent = "";
        bar.setAttribute("aria-valuenow", "0");
        bar.removeAttribute("aria-valuetext");
        bar.querySelector(".progress-succeeded").style.width = "0%";
        bar.querySelector(".progress-failed").style.width = "0%";
        return;
      }
      const { total, processed, succeeded, failed } = job.progress;
      const percent = total ? Math.floor((processed / total) * 100) : 100;
      $("job-status").textContent = job.status;
      $("job-status").className = "badge " + job.status;
      $("job-percent").textContent = `${percent} %`;
      $("job-total").textContent = fmtNumber(total);
      $("job-processed").textContent = fmtNumber(processed);
      $("job-succeeded").textContent = fmtNumber(succeeded);
      $("job-failed").textContent = fmtNumber(failed);
      bar.setAttribute("aria-valuenow", String(percent));
      bar.setAttribute("aria-valuetext", `${percent} percent, ${processed} of ${total} images processed`);
      bar.querySelector(".progress-succeeded").style.width = total ? `${(succeeded / total) * 100}%` : "0%";
      bar.querySelector(".progress-failed").style.width = total ? `${(failed / total) * 100}%` : "0%";

      const created = Date.parse(job.created_at);
      const serverNow = Date.now() + (skewMs || 0);
      const end = job.finished_at ? Date.parse(job.finished_at) : serverNow;
      const elapsed = Math.max(0, (end - created) / 1000);
      $("job-elapsed").textContent = fmtDuration(elapsed);
      if (job.status !== "ongoing") {
        $("job-eta").textContent = "done";
      } else {
        const now = Date.now();
        this.samples.push({ at: now, processed });
        this.samples = this.samples.filter((s) => now - s.at <= RATE_WINDOW_MS);
        const first = this.samples[0];
        let rate = null; // images per second
        if (now - first.at >= 2000 && processed > first.processed) rate = (processed - first.processed) / ((now - first.at) / 1000);
        else if (processed > 0 && elapsed > 0) rate = processed / elapsed;
        $("job-eta").textContent = rate ? fmtDuration((total - processed) / rate) : "estimating…";
      }
      this.announce(job, percent);
    },

    announce(job, percent) {
      const milestone = job.status !== "ongoing" ? 4 : Math.floor(percent / 25);
      if (milestone === this.lastMilestone) return;
      this.lastMilestone = milestone;
      const { processed, total, failed } = job.progress;
      $("job-announce").textContent =
        job.status === "ongoing"
          ? `Job ${percent} percent done: ${processed} of ${total} images.`
          : `Job ${job.status}: ${processed} of ${total} images processed, ${failed} failed.`;
    },

    renderErrors(job) {
      const errors = Array.isArray(job.error) ? job.error : [];
      const tbody = $("errors-table").querySelector("tbody");
      for (const entry of errors) {
        if (this.knownErrorStores.has(entry.store_id)) continue;
        this.knownErrorStores.add(entry.store_id);
        // New failures appear as they happen, marked until the next one arrives.
        for (const row of tbody.querySelectorAll("tr.new")) row.classList.remove("new");
        tbody.append(
          el("tr", { class: "new" }, el("td", { class: "mono" }, entry.store_id), el("td", { class: "error-text" }, entry.error)),
        );
      }
      $("errors-table").hidden = errors.length === 0;
      $("errors-empty").hidden = errors.length > 0;
      $("errors-truncated").hidden = !job.error_truncated;
    },

    // -- results pages --
    resetResults() {
      this.pages = [null];
      this.pageIndex = 0;
      this.rows = [];
      this.offsets = [0];
      $("results-table").querySelector("tbody").replaceChildren();
      showMessage($("results-message"), "");
      this.updatePager(null);
      this.loadPage(0);
    },

    onLastPage() {
      return this.pages[this.pageIndex + 1] === undefined;
    },

    async loadPage(index) {
      const generation = this.generation;
      const limit = Number($("results-limit").value);
      showMessage($("results-message"), "Loading results…", "info");
      let body;
      try {
        ({ body } = await api("api/results", { jobid: this.jobId, limit, next_token: this.pages[index] }));
      } catch (e) {
        if (generation === this.generation) {
          showMessage($("results-message"), e.status ? `The API answered ${e.status}: ${e.message}` : e.message, "error");
        }
        return;
      }
      if (generation !== this.generation) return;
      this.pageIndex = index;
      this.rows = body.results;
      this.offsets[index + 1] = this.offsets[index] + body.results.length;
      if (body.next_token) this.pages[index + 1] = body.next_token;
      else this.pages.length = index + 1;
      this.renderRows();
      this.updatePager(body.next_token);
    },

    renderRows() {
      const filter = $("results-filter").value;
      const offset = this.offsets[this.pageIndex];
      const numbered = this.rows.map((r, i) => ({ r, number: offset + i + 1 }));
      const shown = numbered.filter(({ r }) => filter === "all" || r.status === filter);
      const tbody = $("results-table").querySelector("tbody");
      tbody.replaceChildren(...shown.map(({ r, number }) => resultRow(r, number)));
      const what = filter === "all" ? "images" : `${filter} images`;
      let text = `${shown.length} ${what.replace(/s$/, shown.length === 1 ? "" : "s")} on this page`;
      if (filter !== "all") text += ` (of ${this.rows.length} loaded)`;
      if (this.rows.length === 0) text = "No ended images yet.";
      showMessage($("results-message"), text + ".", "info");
    },

    updatePager(nextToken) {
      $("results-prev").disabled = this.pageIndex === 0;
      $("results-next").disabled = !nextToken;
      $("results-page").textContent = `Page ${this.pageIndex + 1}`;
    },

    async downloadCsv() {
      const generation = this.generation;
      const filter = $("results-filter").value;
      const button = $("results-csv");
      button.disabled = true;
      const all = [];
      let token = null;
      try {
        do {
          showMessage($("results-message"), `Preparing CSV… ${all.length} images so far.`, "info");
          const { body } = await api("api/results", { jobid: this.jobId, limit: CSV_PAGE, next_token: token });
          all.push(...body.results);
          token = body.next_token;
        } while (token && generation === this.generation);
      } catch (e) {
        showMessage($("results-message"), `CSV not made: ${e.message}`, "error");
        return;
      } finally {
        button.disabled = false;
      }
      if (generation !== this.generation) return;
      const rows = all.filter((r) => filter === "all" || r.status === filter);
      const blob = new Blob([resultsToCsv(rows)], { type: "text/csv;charset=utf-8" });
      const link = el("a", { href: URL.createObjectURL(blob), download: `results-${this.jobId}${filter === "all" ? "" : "-" + filter}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      showMessage($("results-message"), `CSV downloaded: ${rows.length} ${filter === "all" ? "" : filter + " "}images.`, "ok");
    },
  };

  function resultRow(r, number) {
    const thumb = el("img", { src: r.image_url, alt: "", loading: "lazy", width: 64, height: 48, class: "thumb" });
    // A broken image (the 404s among failures) shows a neutral placeholder, not the browser's icon.
    thumb.addEventListener("error", () => thumb.classList.add("broken"), { once: true });
    const link = el("a", { href: r.image_url, target: "_blank", rel: "noopener noreferrer", class: "thumb-link" }, thumb);
    link.setAttribute("aria-label", `Open image ${number} (${r.image_url})`);
    const status = el("td", { class: "status-cell" }, el("span", { class: "badge " + r.status, text: r.status }));
    if (r.error) status.append(el("div", { class: "error-text", text: r.error }));
    return el(
      "tr",
      { "data-status": r.status },
      el("td", { class: "num" }, String(number)),
      el("td", {}, link),
      el("td", { class: "mono" }, r.store_id),
      el("td", { class: "nowrap" }, r.visit_time),
      el("td", { class: "num" }, fmtNumber(r.width)),
      el("td", { class: "num" }, fmtNumber(r.height)),
      el("td", { class: "num" }, fmtNumber(r.perimeter)),
      status,
    );
  }

  // -- Areas -------------------------------------------------------------------------------------
  let areasRequest = 0;

  function unavailable(e, what) {
    if (e.status === 403 || e.status === 404) {
      return `${what} is not available on this deployment yet (the API answered ${e.status}: ${e.message}).`;
    }
    return e.status ? `The API answered ${e.status}: ${e.message}` : e.message;
  }

  async function showAreas() {
    const request = ++areasRequest;
    const message = $("areas-message");
    showMessage(message, "Loading areas…", "info");
    let body;
    try {
      ({ body } = await api("api/reports/areas"));
    } catch (e) {
      if (request !== areasRequest) return;
      $("areas-content").hidden = true;
      return showMessage(message, unavailable(e, "The area reports API"), "error");
    }
    if (request !== areasRequest) return;
    const areas = body.areas || [];
    showMessage(message, areas.length ? "" : "The Store Master has no areas.", "info");
    $("areas-content").hidden = false;
    $("areas-table").querySelector("tbody").replaceChildren(
      ...areas.map((a) =>
        el(
          "tr",
          {},
          el("th", { scope: "row" }, el("a", { href: "#/areas", "data-area": a.area, class: "area-link" }, a.area)),
          el("td", { class: "num" }, fmtNumber(a.stores)),
          el("td", { class: "num" }, fmtNumber(a.visits)),
          el("td", { class: "num" }, fmtNumber(a.images)),
          el("td", { class: "num" }, fmtNumber(a.failed_images)),
          el("td", { class: "num" }, fmtRate(a.failure_rate)),
          el("td", { class: "nowrap" }, a.last_visit || "–"),
        ),
      ),
    );
    $("areas-chart").replaceChildren(
      barChart(
        areas.map((a) => ({ label: a.area, total: a.images || 0, failed: a.failed_images || 0 })),
        "Images per area",
        chartWidth($("areas-chart")),
      ),
    );
    const select = $("area-select");
    const previous = select.value;
    select.replaceChildren(...areas.map((a) => el("option", { value: a.area }, a.area)));
    if (areas.some((a) => a.area === previous)) select.value = previous;
  }

  /** Horizontal bars, one per item: total length, its failed share in red. Inline SVG. */
  // Charts are drawn at their container's width (text at its real size, also on a phone).
  const chartWidth = (container) => Math.max(300, Math.min(760, container.clientWidth || 600));

  function barChart(items, title, width) {
    const rowHeight = 28;
    const labelWidth = 80;
    const max = Math.max(1, ...items.map((i) => i.total));
    const height = Math.max(rowHeight, items.length * rowHeight) + 8;
    const summary = items.map((i) => `${i.label}: ${i.total} images, ${i.failed} failed`).join("; ");
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `${title}. ${summary || "No data."}`,
      class: "bar-chart",
      preserveAspectRatio: "xMinYMin meet",
    });
    items.forEach((item, n) => {
      const y = 4 + n * rowHeight;
      const barMax = width - labelWidth - 110;
      const full = (item.total / max) * barMax;
      const failed = (item.failed / max) * barMax;
      chart.append(
        svg("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "label", text: item.label }),
        svg("rect", { x: labelWidth, y: y + 4, width: Math.max(full, 0), height: rowHeight - 10, class: "bar-ok", rx: 2 }),
        svg("rect", { x: labelWidth + full - failed, y: y + 4, width: failed, height: rowHeight - 10, class: "bar-failed" }),
        svg("text", { x: labelWidth + full + 6, y: y + 17, class: "value", text: `${fmtNumber(item.total)}${item.failed ? ` (${fmtNumber(item.failed)} failed)` : ""}` }),
      );
    });
    return chart;
  }

  /** Vertical bars per date (images measured that day). */
  function dayChart(days, width) {
    const height = 180;
    const bottom = 24;
    const max = Math.max(1, ...days.map((d) => d.images));
    const step = days.length ? Math.min(60, (width - 40) / days.length) : 0;
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": "Images per day. " + (days.map((d) => `${d.date}: ${d.images}`).join("; ") || "No visits."),
      class: "day-chart",
      preserveAspectRatio: "xMinYMin meet",
    });
    chart.append(svg("line", { x1: 30, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
    chart.append(svg("text", { x: 26, y: 12, "text-anchor": "end", class: "value", text: String(max) }));
    days.forEach((d, n) => {
      const h = (d.images / max) * (height - bottom - 16);
      const x = 34 + n * step;
      chart.append(
        svg("rect", { x, y: height - bottom - h, width: Math.max(step - 6, 2), height: h, class: "bar-ok" }, svg("title", { text: `${d.date}: ${d.images} images` })),
      );
      if (days.length <= 12 || n % Math.ceil(days.length / 12) === 0) {
        chart.append(svg("text", { x: x + (step - 6) / 2, y: height - 8, "text-anchor": "middle", class: "label small", text: d.date.slice(5) }));
      }
    });
    return chart;
  }

  async function showArea(event) {
    if (event) event.preventDefault();
    const area = $("area-select").value;
    if (!area) return;
    const message = $("area-message");
    const params = { area, storeid: $("area-store").value.trim() };
    showMessage(message, `Loading area ${area}…`, "info");
    let stores;
    let visits;
    try {
      [stores, visits] = await Promise.all([
        api("api/reports/stores", params),
        api("api/visits", { ...params, startdate: $("area-start").value, enddate: $("area-end").value, limit: VISITS_PAGE }),
      ]);
    } catch (e) {
      $("area-detail").hidden = true;
      return showMessage(message, unavailable(e, "The store and visit reports API"), "error");
    }
    showMessage(message, "");
    $("area-detail").hidden = false;
    $("area-name").textContent = area;
    const s = stores.body;
    $("stores-summary").textContent = `${fmtNumber(s.stores_reported)} of ${fmtNumber(s.stores_in_area)} stores have visits counted.`;
    $("stores-table").querySelector("tbody").replaceChildren(
      ...s.stores.map((st) =>
        el(
          "tr",
          {},
          el("td", { class: "mono" }, st.store_id),
          el("td", {}, st.store_name || "–"),
          el("td", { class: "num" }, fmtNumber(st.visits)),
          el("td", { class: "num" }, fmtNumber(st.images)),
          el("td", { class: "num" }, fmtNumber(st.failed_images)),
          el("td", { class: "num" }, fmtRate(st.failure_rate)),
          el("td", { class: "nowrap" }, st.last_visit || "–"),
        ),
      ),
    );
    const perDay = new Map();
    const rows = [];
    for (const store of visits.body.results) {
      for (const d of store.data) {
        perDay.set(d.date, (perDay.get(d.date) || 0) + d.perimeter.length);
        rows.push(
          el(
            "tr",
            {},
            el("td", { class: "mono" }, store.store_id),
            el("td", { class: "nowrap" }, d.date),
            el("td", { class: "num" }, fmtNumber(d.perimeter.length)),
            el("td", { class: "perimeters" }, d.perimeter.slice(0, 20).join(", ") + (d.perimeter.length > 20 ? ", …" : "")),
          ),
        );
      }
    }
    const days = [...perDay.entries()].sort().map(([date, images]) => ({ date, images }));
    $("visits-chart").replaceChildren(dayChart(days, chartWidth($("visits-chart"))));
    $("visits-table").querySelector("tbody").replaceChildren(...rows);
    $("visits-more").hidden = !visits.body.next_token;
    $("visits-more").textContent = `Showing the first ${VISITS_PAGE} images: narrow the dates or pick a store to see the rest.`;
  }

  // -- Settings ----------------------------------------------------------------------------------
  function showSettings() {
    $("api-base").value = storageGet(SETTINGS_KEY, "");
    $("api-key").value = storageGet(API_KEY_KEY, "");
    $("api-default").textContent = defaultApiBase();
  }

  function saveSettings(event) {
    event.preventDefault();
    const value = $("api-base").value.trim();
    const message = $("settings-message");
    if (value && !/^https?:\/\/[^/]+/i.test(value)) {
      return showMessage(message, "The API base URL must start with http:// or https://", "error");
    }
    storageSet(SETTINGS_KEY, value || null);
    storageSet(API_KEY_KEY, $("api-key").value.trim() || null);
    showMessage(message, `Saved: the dashboard now calls ${apiBase()}`, "ok");
  }

  // -- wiring ------------------------------------------------------------------------------------
  function init() {
    $("job-file").addEventListener("change", onFilePicked);
    $("submit-form").addEventListener("submit", onSubmit);
    $("example-button").addEventListener("click", () => {
      $("job-json").value = JSON.stringify(exampleJob(), null, 2);
      $("job-json").focus();
    });
    $("lookup-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = $("lookup-id").value.trim();
      if (id) window.location.hash = "#/job/" + encodeURIComponent(id);
    });
    $("results-filter").addEventListener("change", () => jobView.renderRows());
    $("results-limit").addEventListener("change", () => jobView.resetResults());
    $("results-refresh").addEventListener("click", () => jobView.loadPage(jobView.pageIndex));
    $("results-prev").addEventListener("click", () => jobView.loadPage(jobView.pageIndex - 1));
    $("results-next").addEventListener("click", () => jobView.loadPage(jobView.pageIndex + 1));
    $("results-csv").addEventListener("click", () => jobView.downloadCsv());
    $("area-form").addEventListener("submit", showArea);
    $("areas-table").addEventListener("click", (event) => {
      const link = event.target.closest("a[data-area]");
      if (!link) return;
      event.preventDefault();
      $("area-select").value = link.dataset.area;
      showArea();
    });
    $("settings-form").addEventListener("submit", saveSettings);
    $("forget-jobs").addEventListener("click", () => {
      storageSet(JOBS_KEY, null);
      showMessage($("settings-message"), "This browser's job list is cleared.", "ok");
    });
    window.addEventListener("hashchange", route);
    route();
  }

  // The pure functions, for the browser tests to hold them to the API's own rules.
  window.retailPulse = { validateJob, csvToJob, parseCsv, resultsToCsv, isHttpUrl, isVisitTime };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
