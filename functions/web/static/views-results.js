/* One job's results: paged through /api/results, filtered by status, downloadable as CSV. The job
   view (views-job.js) opens it for a job and stops it when it leaves. */

import { api, apiErrorText } from "./api.js?v=__ASSET_VERSION__";
import { resultsToCsv } from "./csv.js?v=__ASSET_VERSION__";
import { $, el, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { fmtNumber } from "./format.js?v=__ASSET_VERSION__";

const CSV_PAGE = 1000; // the API's largest results page

export const results = {
  jobId: null,
  generation: 0, // bumps with the job view's, so pages loaded for a job no longer shown are dropped
  pages: [null], // next_token of each page loaded so far
  pageIndex: 0,
  offsets: [0], // how many images precede each loaded page, for the row numbers
  rows: [],

  stop() {
    this.generation++;
  },

  open(jobId) {
    this.jobId = jobId;
    this.reset();
  },

  reset() {
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
        showMessage($("results-message"), apiErrorText(e), "error");
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

export function wireResults() {
  $("results-filter").addEventListener("change", () => results.renderRows());
  $("results-limit").addEventListener("change", () => results.reset());
  $("results-refresh").addEventListener("click", () => results.loadPage(results.pageIndex));
  $("results-prev").addEventListener("click", () => results.loadPage(results.pageIndex - 1));
  $("results-next").addEventListener("click", () => results.loadPage(results.pageIndex + 1));
  $("results-csv").addEventListener("click", () => results.downloadCsv());
}
