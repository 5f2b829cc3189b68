/* One job: its live status (polled each second), progress, ETA and errors by store; its results
   below come from views-results.js. */

import { api } from "./api.js?v=__ASSET_VERSION__";
import { $, el, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { fmtDuration, fmtNumber } from "./format.js?v=__ASSET_VERSION__";
import { rememberJob } from "./storage.js?v=__ASSET_VERSION__";
import { control } from "./views-control.js?v=__ASSET_VERSION__";
import { exportPanel, renderPhase } from "./views-files.js?v=__ASSET_VERSION__";
import { results } from "./views-results.js?v=__ASSET_VERSION__";

const POLL_MS = 1000;
const RESULTS_REFRESH_POLLS = 3; // while a job runs, its last results page reloads every 3rd poll
const RATE_WINDOW_MS = 10000; // the ETA uses the progress rate over this recent window

export const jobView = {
  jobId: null,
  generation: 0, // bumps whenever the view changes job, so stale polls drop their answers
  timer: null,
  samples: [],
  lastStatus: null,
  lastMilestone: -1,
  knownErrorStores: new Set(),
  polls: 0,

  stop() {
    this.generation++;
    results.stop();
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
    renderPhase(null);
    exportPanel.open(jobId);
    results.open(jobId);
    control.open(jobId, () => this.repoll());
    this.poll(this.generation);
  },

  /** Polls again now (after a control action), dropping the poll already scheduled. */
  repoll() {
    clearTimeout(this.timer);
    this.generation++;
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
    renderPhase(job);
    this.renderErrors(job);
    control.render(job);
    control.pollFeed();
    rememberJob({ job_id: job.job_id, total: job.progress.total, status: job.status });
    const live = job.status === "ongoing" || job.status === "paused";
    const finishedNow = (this.lastStatus === "ongoing" || this.lastStatus === "paused") && !live;
    this.lastStatus = job.status;
    if (live) {
      if (this.polls % RESULTS_REFRESH_POLLS === 0 && results.onLastPage()) results.loadPage(results.pageIndex);
      this.timer = setTimeout(() => this.poll(generation), POLL_MS);
    } else {
      this.timer = null;
      if (finishedNow && results.onLastPage()) results.loadPage(results.pageIndex);
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
    const serverEta = control.eta(job);
    if (serverEta !== undefined) {
      $("job-eta").textContent = serverEta; // the API's, from its own rate window
    } else if (job.status !== "ongoing") {
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
    // 0-4 while ongoing (every 25 %; a job may sit at 100 % a moment before it ends), 5 once ended.
    const live = job.status === "ongoing" || job.status === "paused";
    const milestone = !live ? 5 : Math.floor(percent / 25);
    if (milestone === this.lastMilestone) return;
    this.lastMilestone = milestone;
    const { processed, total, failed } = job.progress;
    $("job-announce").textContent =
      live
        ? `Job ${job.status === "paused" ? "paused at" : ""} ${percent} percent done: ${processed} of ${total} images.`
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
};
