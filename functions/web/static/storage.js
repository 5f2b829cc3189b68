/* This browser's memory (localStorage): the settings and the jobs it submitted or opened. */

export const SETTINGS_KEY = "retailPulse.apiBase";
export const API_KEY_KEY = "retailPulse.apiKey";
const JOBS_KEY = "retailPulse.jobs";
const MAX_REMEMBERED_JOBS = 200;

export function storageGet(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch (e) {
    return fallback; // storage disabled or corrupt: behave as if empty
  }
}

export function storageSet(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    /* private mode or full: the dashboard still works, it just forgets */
  }
}

export function rememberedJobs() {
  const jobs = storageGet(JOBS_KEY, []);
  return Array.isArray(jobs) ? jobs.filter((j) => j && typeof j.job_id === "string") : [];
}

export function rememberJob(update) {
  const jobs = rememberedJobs();
  const existing = jobs.find((j) => j.job_id === update.job_id);
  if (existing) Object.assign(existing, update);
  else jobs.unshift({ submitted_at: new Date().toISOString(), ...update });
  storageSet(JOBS_KEY, jobs.slice(0, MAX_REMEMBERED_JOBS));
}

export function forgetJobs() {
  storageSet(JOBS_KEY, null);
}
