/* Jobs of any size: a file uploaded as a manifest (a presigned PUT with a progress bar, then
   POST /api/submit {"manifest"}), the phase of a job being fanned out, and results exported to a file
   (POST then GET /api/results/export, a link to the presigned URL once ready). */

import { api, apiErrorText } from "./api.js?v=__ASSET_VERSION__";
import { $, el, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { fmtNumber } from "./format.js?v=__ASSET_VERSION__";

// Files submitted as a manifest without asking: JSON Lines, and anything bigger than an inline body
// may be (the API keeps API Gateway's event within Lambda's 6 MB).
export const MANIFEST_AUTO_BYTES = 5 * 1024 * 1024;
const EXPORT_POLL_MS = 500;

export function wantsManifest(file) {
  return /\.(jsonl|ndjson)$/i.test(file.name) || file.size > MANIFEST_AUTO_BYTES;
}

/** PUT the file to a presigned URL (XHR: fetch reports no upload progress); resolves when stored. */
function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    // No headers of ours: the URL is signed for the file's exact size, and S3 wants no API key.
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () =>
      xhr.status >= 200 && xhr.status < 300
        ? resolve()
        : reject(new Error(`The upload was refused (${xhr.status}): ${xhr.responseText.slice(0, 200)}`));
    xhr.onerror = () => reject(new Error("The upload failed: the storage could not be reached"));
    xhr.send(file);
  });
}

/** Upload `file` and submit it as a manifest; resolves to the submit's answer (job_id, format). */
export async function submitManifestFile(file, onProgress) {
  const { body: upload } = await api("api/uploads", null, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ size: file.size }),
  });
  await putFile(upload.upload_url, file, onProgress);
  const { body } = await api("api/submit", null, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ manifest: upload.upload_id }),
  });
  return body;
}

/** The phase line of a job's view: what the fan-out is doing, and a refused manifest's bad rows. */
export function renderPhase(job) {
  const line = $("job-phase");
  const live = job && (job.status === "ongoing" || job.status === "paused");
  const phase = live ? job.phase : null;
  const paused = live && job.status === "paused" ? " (paused: goes on when resumed)" : "";
  if (phase === "accepted") line.textContent = `Accepted: the manifest's rows are being checked${paused}.`;
  else if (phase === "enqueuing") {
    const counts = `${fmtNumber(job.enqueued || 0)} of ${fmtNumber(job.progress.total)}`;
    line.textContent = `Enqueuing images: ${counts}${paused}.`;
  } else line.textContent = "";
  line.hidden = !line.textContent;
  const list = $("manifest-errors");
  const errors = (job && job.manifest_errors) || [];
  list.replaceChildren(...errors.map((e) => el("li", null, `line ${e.line}: ${e.error}`)));
  $("manifest-errors-box").hidden = errors.length === 0;
  $("manifest-errors-count").textContent = errors.length
    ? `The manifest was refused: ${fmtNumber(job.manifest_error_count)} invalid rows; nothing of it was processed.`
    : "";
}

export const exportPanel = {
  jobId: null,
  generation: 0,

  open(jobId) {
    this.jobId = jobId;
    this.generation++;
    showMessage($("export-message"), "");
    $("export-link").hidden = true;
    $("export-button").disabled = false;
  },

  async start() {
    const generation = this.generation;
    const format = $("export-format").value;
    const status = $("export-failed").checked ? "failed" : null;
    $("export-button").disabled = true;
    $("export-link").hidden = true;
    showMessage($("export-message"), "Exporting…", "info");
    try {
      const { body: started } = await api("api/results/export", { jobid: this.jobId, format, status }, { method: "POST" });
      let state;
      for (;;) {
        ({ body: state } = await api("api/results/export", { export_id: started.export_id }));
        if (generation !== this.generation) return;
        if (state.state !== "running") break;
        showMessage($("export-message"), `Exporting… ${fmtNumber(state.rows)} results so far.`, "info");
        await new Promise((r) => setTimeout(r, EXPORT_POLL_MS));
      }
      if (state.state !== "ready") throw new Error(`The export failed: ${state.error || "no reason given"}`);
      const link = $("export-link");
      link.href = state.url;
      link.textContent = `Download ${state.format.toUpperCase()} (${fmtNumber(state.rows)} results)`;
      link.hidden = false;
      const note = state.complete ? "" : " The job was still running: the file's last line says how far it got.";
      showMessage($("export-message"), `Export ready.${note}`, "ok");
    } catch (e) {
      if (generation === this.generation) showMessage($("export-message"), apiErrorText(e), "error");
    } finally {
      if (generation === this.generation) $("export-button").disabled = false;
    }
  },
};

export function wireFiles() {
  $("export-button").addEventListener("click", () => exportPanel.start());
}

