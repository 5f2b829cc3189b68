/* Submit: a job from the JSON box or a .json/.csv file, checked here first, then sent. */

import { api, apiErrorText } from "./api.js?v=__ASSET_VERSION__";
import { csvToJob } from "./csv.js?v=__ASSET_VERSION__";
import { $, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { rememberJob } from "./storage.js?v=__ASSET_VERSION__";
import { submitManifestFile, wantsManifest } from "./views-files.js?v=__ASSET_VERSION__";
import { parseJobText, validateJob } from "./validation.js?v=__ASSET_VERSION__";

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
  $("job-as-manifest").checked = Boolean(file) && wantsManifest(file);
  if (!file) return;
  if ($("job-as-manifest").checked) {
    const size = `${(file.size / 1048576).toFixed(1)} MB`;
    return showMessage(message, `${file.name} (${size}): it will be uploaded as a manifest and checked there.`, "ok");
  }
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

async function onSubmitManifest(file) {
  const message = $("submit-message");
  const button = $("submit-button");
  const bar = $("upload-progress");
  button.disabled = true;
  $("upload-box").hidden = false;
  showMessage(message, `Uploading ${file.name}…`, "info");
  try {
    const body = await submitManifestFile(file, (loaded, total) => {
      bar.value = total ? Math.floor((loaded / total) * 100) : 0;
      $("upload-text").textContent = `${(loaded / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MB`;
    });
    rememberJob({ job_id: body.job_id, total: 0, status: "ongoing" });
    showMessage(message, `Accepted: job ${body.job_id} (${body.format} manifest, being checked).`, "ok");
    window.location.hash = "#/job/" + encodeURIComponent(body.job_id);
  } catch (e) {
    showMessage(message, apiErrorText(e), "error");
  } finally {
    button.disabled = false;
  }
}

async function onSubmit(event) {
  event.preventDefault();
  const file = $("job-file").files[0];
  if (file && $("job-as-manifest").checked) return onSubmitManifest(file);
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
    showMessage(message, apiErrorText(e), "error");
  } finally {
    button.disabled = false;
  }
}

export function wireSubmit() {
  $("job-file").addEventListener("change", onFilePicked);
  $("submit-form").addEventListener("submit", onSubmit);
  $("example-button").addEventListener("click", () => {
    $("job-json").value = JSON.stringify(exampleJob(), null, 2);
    $("job-json").focus();
  });
}
