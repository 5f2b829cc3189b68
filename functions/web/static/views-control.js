/* Job control in a job's view: pause / resume / cancel / retry (with a filter), the plan the API
   computes (throughput, ETA, phases, cost), labels and failure threshold, and the live results
   feed (GET /api/results?order=processed&since=...: each result once, in the order they ended). */

import { api, apiErrorText } from "./api.js?v=__ASSET_VERSION__";
import { $, el, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { fmtDuration, fmtNumber, fmtTime } from "./format.js?v=__ASSET_VERSION__";

const FEED_ROWS = 20; // the feed table keeps the newest 20 rows (the count covers them all)
const LIVE = ["ongoing", "paused"];

export const control = {
  jobId: null,
  generation: 0,
  since: null,
  received: 0,
  seen: new Set(),
  feedDone: false,
  feedBusy: false,
  jobEnded: false,
  onChange: null, // the job view's re-poll, after an action

  open(jobId, onChange) {
    this.generation++;
    this.jobId = jobId;
    this.onChange = onChange;
    this.since = null;
    this.received = 0;
    this.seen = new Set();
    this.feedDone = false;
    this.feedBusy = false;
    $("feed-table").querySelector("tbody").replaceChildren();
    $("feed-summary").textContent = "Waiting for results…";
    showMessage($("control-message"), "");
    this.render(null);
  },

  render(job) {
    const status = job ? job.status : null;
    this.jobEnded = Boolean(job) && !LIVE.includes(status);
    $("job-pause").disabled = status !== "ongoing";
    $("job-resume").disabled = status !== "paused";
    $("job-cancel").disabled = !LIVE.includes(status);
    $("job-retry").disabled = !job || LIVE.includes(status) || !job.progress.failed || Boolean(job.retried_by);
    const labels = job && job.labels ? Object.entries(job.labels) : [];
    $("job-labels").replaceChildren(
      ...labels.map(([k, v]) => el("span", { class: "label-chip mono" }, `${k}:${v}`)),
    );
    $("job-labels").hidden = labels.length === 0;
    const threshold = job && job.failure_threshold;
    $("job-threshold").textContent = threshold
      ? "Failure threshold: " +
        [
          threshold.tolerated_failure_percentage !== null ? `${threshold.tolerated_failure_percentage} %` : null,
          threshold.tolerated_failure_count !== null ? `${threshold.tolerated_failure_count} images` : null,
        ]
          .filter(Boolean)
          .join(" or ") +
        (job.progress.skipped ? ` — exceeded: ${fmtNumber(job.progress.skipped)} images skipped` : "")
      : "";
    $("job-reason").textContent = job && job.reason ? job.reason : "";
    const dash = "–";
    const t = job && job.throughput;
    $("plan-started").textContent = job && job.started_at ? fmtTime(job.started_at) : dash;
    $("plan-recent").textContent = t && t.recent_per_min !== null ? fmtNumber(t.recent_per_min) : dash;
    $("plan-overall").textContent = t && t.overall_per_min !== null ? fmtNumber(t.overall_per_min) : dash;
    const phases = job && job.phases;
    $("plan-to-enqueue").textContent = phases ? fmtNumber(phases.to_enqueue) : dash;
    $("plan-queued").textContent = phases ? fmtNumber(phases.queued) : dash;
    $("plan-inflight").textContent = phases ? fmtNumber(phases.in_flight) : dash;
    $("plan-ended").textContent = phases ? fmtNumber(phases.ended) : dash;
    const cost = job && job.cost;
    $("plan-cost").textContent = cost ? "$" + cost.usd.toFixed(6) : dash;
    $("plan-gbs").textContent = cost ? String(cost.gb_s) : dash;
    $("plan-bytes").textContent = cost ? fmtBytes(cost.bytes_downloaded) : dash;
  },

  /** The server's ETA, when it has one (null: estimating, or paused). */
  eta(job) {
    if (!job || job.eta_s === undefined) return undefined;
    if (job.status === "paused") return "paused";
    if (!LIVE.includes(job.status)) return "done";
    return job.eta_s === null ? "estimating…" : fmtDuration(job.eta_s);
  },

  async pollFeed() {
    if (this.feedBusy || this.feedDone || !this.jobId) return;
    const generation = this.generation;
    this.feedBusy = true;
    try {
      for (let pages = 0; pages < 5; pages++) {
        const { body } = await api("api/results", {
          jobid: this.jobId,
          order: "processed",
          limit: 500,
          since: this.since,
        });
        if (generation !== this.generation) return;
        this.since = body.next_since;
        if (body.done) this.feedDone = true;
        this.append(body.results);
        if (body.done || body.results.length < 500) break;
      }
    } catch (e) {
      if (generation === this.generation) $("feed-summary").textContent = apiErrorText(e);
    } finally {
      if (generation === this.generation) this.feedBusy = false;
    }
    // The job view stops polling once the job has ended: the feed goes on until it has handed out all.
    if (generation === this.generation && this.jobEnded && !this.feedDone) {
      setTimeout(() => generation === this.generation && this.pollFeed(), 500);
    }
  },

  append(results) {
    const tbody = $("feed-table").querySelector("tbody");
    for (const r of results) {
      if (this.seen.has(r.index)) continue; // never happens (the feed hands each out once): belt and braces
      this.seen.add(r.index);
      this.received++;
      tbody.prepend(
        el(
          "tr",
          {},
          el("td", { class: "num" }, String(r.index)),
          el("td", { class: "mono" }, r.store_id),
          el("td", {}, el("span", { class: "badge " + r.status, text: r.status })),
          el("td", { class: "num" }, r.perimeter === null ? "–" : String(r.perimeter)),
          el("td", {}, r.error_class || ""),
          el("td", {}, fmtTime(r.processed_at)),
        ),
      );
    }
    while (tbody.children.length > FEED_ROWS) tbody.lastElementChild.remove();
    $("feed-summary").textContent =
      `${fmtNumber(this.received)} results received in the order they ended` + (this.feedDone ? " (complete)." : ", following…");
  },

  async act(action, params) {
    const jobId = this.jobId;
    showMessage($("control-message"), `${action}…`);
    try {
      const { body } = await api(`api/jobs/${action}`, { jobid: jobId, ...params }, { method: "POST" });
      if (jobId !== this.jobId) return;
      const text =
        action === "retry"
          ? body.total === undefined
            ? `Retrying as job ${body.job_id}: many failed images, listed and enqueued by the fan-out.`
            : `Retrying ${fmtNumber(body.total)} images as job ${body.job_id}.`
          : action === "resume"
            ? `Resumed; ${fmtNumber(body.replayed || 0)} parked images back in the queue.`
            : `Job ${body.status}.`;
      showMessage($("control-message"), text, "ok");
      if (action === "retry") {
        $("control-message").append(" ", el("a", { href: "#/job/" + encodeURIComponent(body.job_id) }, "Open it"));
      }
      if (this.onChange) this.onChange();
    } catch (e) {
      if (jobId === this.jobId) showMessage($("control-message"), apiErrorText(e), "error");
    }
  },
};

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function wireControl() {
  $("job-pause").addEventListener("click", () => control.act("pause"));
  $("job-resume").addEventListener("click", () => control.act("resume"));
  $("job-cancel").addEventListener("click", () => control.act("cancel"));
  $("job-retry").addEventListener("click", () =>
    control.act("retry", { error_class: $("retry-class").value, store_id: $("retry-stores").value.trim() }),
  );
}
