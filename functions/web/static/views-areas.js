/* Areas: /api/reports/areas as a table and a chart; one area's stores and visits by day from
   /api/reports/stores and /api/visits. A deployment without them gets a clear message instead. */

import { api, apiErrorText } from "./api.js?v=__ASSET_VERSION__";
import { barChart, chartWidth, dayChart } from "./charts.js?v=__ASSET_VERSION__";
import { $, el, showMessage } from "./dom.js?v=__ASSET_VERSION__";
import { fmtNumber, fmtRate } from "./format.js?v=__ASSET_VERSION__";

const VISITS_PAGE = 1000;
let areasRequest = 0;

function unavailable(e, what) {
  if (e.status === 403 || e.status === 404) {
    return `${what} is not available on this deployment yet (the API answered ${e.status}: ${e.message}).`;
  }
  return apiErrorText(e);
}

export async function showAreas() {
  const request = ++areasRequest;
  const message = $("areas-message");
  showMessage(message, "Loading areas…", "info");
  let body;
  try {
    ({ body } = await api("api/reports/areas"));
  } catch (e) {
    if (request !== areasRequest) return;
    $("areas-content").hidden = true;
    return showMessage(message, unavailable(e, "The area reports API"), "error");
  }
  if (request !== areasRequest) return;
  const areas = body.areas || [];
  showMessage(message, areas.length ? "" : "The Store Master has no areas.", "info");
  $("areas-content").hidden = false;
  $("areas-table").querySelector("tbody").replaceChildren(
    ...areas.map((a) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, el("a", { href: "#/areas", "data-area": a.area, class: "area-link" }, a.area)),
        el("td", { class: "num" }, fmtNumber(a.stores)),
        el("td", { class: "num" }, fmtNumber(a.visits)),
        el("td", { class: "num" }, fmtNumber(a.images)),
        el("td", { class: "num" }, fmtNumber(a.failed_images)),
        el("td", { class: "num" }, fmtRate(a.failure_rate)),
        el("td", { class: "nowrap" }, a.last_visit || "–"),
      ),
    ),
  );
  $("areas-chart").replaceChildren(
    barChart(
      areas.map((a) => ({ label: a.area, total: a.images || 0, failed: a.failed_images || 0 })),
      "Images per area",
      chartWidth($("areas-chart")),
    ),
  );
  const select = $("area-select");
  const previous = select.value;
  select.replaceChildren(...areas.map((a) => el("option", { value: a.area }, a.area)));
  if (areas.some((a) => a.area === previous)) select.value = previous;
}

async function showArea(event) {
  if (event) event.preventDefault();
  const area = $("area-select").value;
  if (!area) return;
  const message = $("area-message");
  const params = { area, storeid: $("area-store").value.trim() };
  showMessage(message, `Loading area ${area}…`, "info");
  let stores;
  let visits;
  try {
    [stores, visits] = await Promise.all([
      api("api/reports/stores", params),
      api("api/visits", { ...params, startdate: $("area-start").value, enddate: $("area-end").value, limit: VISITS_PAGE }),
    ]);
  } catch (e) {
    $("area-detail").hidden = true;
    return showMessage(message, unavailable(e, "The store and visit reports API"), "error");
  }
  showMessage(message, "");
  $("area-detail").hidden = false;
  $("area-name").textContent = area;
  const s = stores.body;
  $("stores-summary").textContent = `${fmtNumber(s.stores_reported)} of ${fmtNumber(s.stores_in_area)} stores have visits counted.`;
  $("stores-table").querySelector("tbody").replaceChildren(
    ...s.stores.map((st) =>
      el(
        "tr",
        {},
        el("td", { class: "mono" }, st.store_id),
        el("td", {}, st.store_name || "–"),
        el("td", { class: "num" }, fmtNumber(st.visits)),
        el("td", { class: "num" }, fmtNumber(st.images)),
        el("td", { class: "num" }, fmtNumber(st.failed_images)),
        el("td", { class: "num" }, fmtRate(st.failure_rate)),
        el("td", { class: "nowrap" }, st.last_visit || "–"),
      ),
    ),
  );
  const perDay = new Map();
  const rows = [];
  for (const store of visits.body.results) {
    for (const d of store.data) {
      perDay.set(d.date, (perDay.get(d.date) || 0) + d.perimeter.length);
      rows.push(
        el(
          "tr",
          {},
          el("td", { class: "mono" }, store.store_id),
          el("td", { class: "nowrap" }, d.date),
          el("td", { class: "num" }, fmtNumber(d.perimeter.length)),
          el("td", { class: "perimeters" }, d.perimeter.slice(0, 20).join(", ") + (d.perimeter.length > 20 ? ", …" : "")),
        ),
      );
    }
  }
  const days = [...perDay.entries()].sort().map(([date, images]) => ({ date, images }));
  $("visits-chart").replaceChildren(dayChart(days, chartWidth($("visits-chart"))));
  $("visits-table").querySelector("tbody").replaceChildren(...rows);
  $("visits-more").hidden = !visits.body.next_token;
  $("visits-more").textContent = `Showing the first ${VISITS_PAGE} images: narrow the dates or pick a store to see the rest.`;
}

export function wireAreas() {
  $("area-form").addEventListener("submit", showArea);
  $("areas-table").addEventListener("click", (event) => {
    const link = event.target.closest("a[data-area]");
    if (!link) return;
    event.preventDefault();
    $("area-select").value = link.dataset.area;
    showArea();
  });
}
