/* Retail Pulse dashboard: submit jobs, watch them run, explore results and areas.
   ES modules, no build step, no third-party code; index.html loads this one, which imports the rest.
   Every import names its module with the `?v=` placeholder that the web function fills in with the
   assets' content version (as in index.html): each module is cached for a year, two deploys' modules
   never mix, and every import of a module names the same URL, so it is one instance. */

import { csvToJob, parseCsv, resultsToCsv } from "./csv.js?v=__ASSET_VERSION__";
import { route } from "./router.js?v=__ASSET_VERSION__";
import { isHttpUrl, isVisitTime, validateJob } from "./validation.js?v=__ASSET_VERSION__";
import { wireAreas } from "./views-areas.js?v=__ASSET_VERSION__";
import { wireControl } from "./views-control.js?v=__ASSET_VERSION__";
import { wireFiles } from "./views-files.js?v=__ASSET_VERSION__";
import { wireJobs } from "./views-jobs.js?v=__ASSET_VERSION__";
import { wireResults } from "./views-results.js?v=__ASSET_VERSION__";
import { wireSettings } from "./views-settings.js?v=__ASSET_VERSION__";
import { wireSubmit } from "./views-submit.js?v=__ASSET_VERSION__";

function init() {
  wireSubmit();
  wireJobs();
  wireControl();
  wireResults();
  wireFiles();
  wireAreas();
  wireSettings();
  window.addEventListener("hashchange", route);
  route();
}

// The pure functions, for the browser tests to hold them to the API's own rules.
window.retailPulse = { validateJob, csvToJob, parseCsv, resultsToCsv, isHttpUrl, isVisitTime };

// A module runs once the document is parsed (as a deferred script did); the check is for safety.
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
