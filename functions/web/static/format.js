/* Numbers, rates, durations and times as the dashboard shows them. */

const numberFormat = new Intl.NumberFormat("en-US");
export const fmtNumber = (n) => (n === null || n === undefined ? "–" : numberFormat.format(n));
export const fmtRate = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %");

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso || "–") : d.toLocaleString();
}
