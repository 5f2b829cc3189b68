/* Jobs: the API's job list when it has one, else this browser's; open a job by its id. */

import { api } from "./api.js?v=__ASSET_VERSION__";
import { $, el } from "./dom.js?v=__ASSET_VERSION__";
import { fmtNumber, fmtTime } from "./format.js?v=__ASSET_VERSION__";
import { rememberedJobs } from "./storage.js?v=__ASSET_VERSION__";

let jobsRequest = 0;

export async function showJobs() {
  const request = ++jobsRequest;
  const label = $("jobs-label").value.trim();
  if (!label) renderJobs(rememberedJobs(), "Jobs submitted or opened in this browser (kept in this browser only).");
  try {
    const { body } = await api("api/jobs", { label });
    const jobs = Array.isArray(body) ? body : body && Array.isArray(body.jobs) ? body.jobs : null;
    if (jobs && request === jobsRequest) renderJobs(jobs, label ? `Jobs labelled ${label}, from the API.` : "All jobs, from the API.");
  } catch (e) {
    /* No jobs-list API on this deployment (403/404): this browser's own list stays. A bad label: say so. */
    if (label && request === jobsRequest) renderJobs([], `The API answered ${e.status || "nothing"}: ${e.message}`);
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

export function wireJobs() {
  $("jobs-filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showJobs();
  });
  $("lookup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("lookup-id").value.trim();
    if (id) window.location.hash = "#/job/" + encodeURIComponent(id);
  });
}
