/* Settings: the API base URL and key (kept in this browser), and forgetting this browser's jobs. */

import { apiBase, configuredApiBase, configuredApiKey, defaultApiBase, saveApiSettings } from "./api.js?v=__ASSET_VERSION__";
import { $, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { forgetJobs } from "./storage.js?v=__ASSET_VERSION__";

export function showSettings() {
  $("api-base").value = configuredApiBase();
  $("api-key").value = configuredApiKey();
  $("api-default").textContent = defaultApiBase();
}

function saveSettings(event) {
  event.preventDefault();
  const value = $("api-base").value.trim();
  const message = $("settings-message");
  if (value && !/^https?:\/\/[^/]+/i.test(value)) {
    return showMessage(message, "The API base URL must start with http:// or https://", "error");
  }
  saveApiSettings(value, $("api-key").value.trim());
  showMessage(message, `Saved: the dashboard now calls ${apiBase()}`, "ok");
}

export function wireSettings() {
  $("settings-form").addEventListener("submit", saveSettings);
  $("forget-jobs").addEventListener("click", () => {
    forgetJobs();
    showMessage($("settings-message"), "This browser's job list is cleared.", "ok");
  });
}
