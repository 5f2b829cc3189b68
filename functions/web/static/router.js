/* Routing: the URL's hash (#/submit, #/jobs, #/job/<id>, #/areas, #/settings) picks the view. */

import { $ } from "./dom.js?v=__ASSET_VERSION__";
import { showAreas } from "./views-areas.js?v=__ASSET_VERSION__";
import { jobView } from "./views-job.js?v=__ASSET_VERSION__";
import { showJobs } from "./views-jobs.js?v=__ASSET_VERSION__";
import { showSettings } from "./views-settings.js?v=__ASSET_VERSION__";

const VIEWS = ["submit", "jobs", "job", "areas", "settings"];
let firstRoute = true;

export function route() {
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
