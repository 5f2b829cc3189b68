/* The Areas view's charts: inline SVG, drawn at their container's width. */

import { svg } from "./dom.js?v=__ASSET_VERSION__";
import { fmtNumber } from "./format.js?v=__ASSET_VERSION__";

// Charts are drawn at their container's width (text at its real size, also on a phone).
export const chartWidth = (container) => Math.max(300, Math.min(760, container.clientWidth || 600));

/** Horizontal bars, one per item: total length, its failed share in red. */
export function barChart(items, title, width) {
  const rowHeight = 28;
  const labelWidth = 80;
  const max = Math.max(1, ...items.map((i) => i.total));
  const height = Math.max(rowHeight, items.length * rowHeight) + 8;
  const summary = items.map((i) => `${i.label}: ${i.total} images, ${i.failed} failed`).join("; ");
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}. ${summary || "No data."}`,
    class: "bar-chart",
    preserveAspectRatio: "xMinYMin meet",
  });
  items.forEach((item, n) => {
    const y = 4 + n * rowHeight;
    const barMax = width - labelWidth - 110;
    const full = (item.total / max) * barMax;
    const failed = (item.failed / max) * barMax;
    chart.append(
      svg("text", { x: labelWidth - 8, y: y + 17, "text-anchor": "end", class: "label", text: item.label }),
      svg("rect", { x: labelWidth, y: y + 4, width: Math.max(full, 0), height: rowHeight - 10, class: "bar-ok", rx: 2 }),
      svg("rect", { x: labelWidth + full - failed, y: y + 4, width: failed, height: rowHeight - 10, class: "bar-failed" }),
      svg("text", { x: labelWidth + full + 6, y: y + 17, class: "value", text: `${fmtNumber(item.total)}${item.failed ? ` (${fmtNumber(item.failed)} failed)` : ""}` }),
    );
  });
  return chart;
}

/** Vertical bars per date (images measured that day). */
export function dayChart(days, width) {
  const height = 180;
  const bottom = 24;
  const max = Math.max(1, ...days.map((d) => d.images));
  const step = days.length ? Math.min(60, (width - 40) / days.length) : 0;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "Images per day. " + (days.map((d) => `${d.date}: ${d.images}`).join("; ") || "No visits."),
    class: "day-chart",
    preserveAspectRatio: "xMinYMin meet",
  });
  chart.append(svg("line", { x1: 30, x2: width, y1: height - bottom, y2: height - bottom, class: "axis" }));
  chart.append(svg("text", { x: 26, y: 12, "text-anchor": "end", class: "value", text: String(max) }));
  days.forEach((d, n) => {
    const h = (d.images / max) * (height - bottom - 16);
    const x = 34 + n * step;
    chart.append(
      svg("rect", { x, y: height - bottom - h, width: Math.max(step - 6, 2), height: h, class: "bar-ok" }, svg("title", { text: `${d.date}: ${d.images} images` })),
    );
    if (days.length <= 12 || n % Math.ceil(days.length / 12) === 0) {
      chart.append(svg("text", { x: x + (step - 6) / 2, y: height - 8, "text-anchor": "middle", class: "label small", text: d.date.slice(5) }));
    }
  });
  return chart;
}
