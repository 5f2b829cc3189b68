"""What the images and stores say: visit queries and cumulative reports. No boto3 here."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.errors import AreaNotFound, InvalidRequest, StoreNotFound, StoreNotInArea
from retail_pulse.domain.models import ReportCounters, VisitImage
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.tenancy import Caller
from retail_pulse.domain.validation import echo
from retail_pulse.logic.paging import decode_token, encode_token, parse_limit
from retail_pulse.ports import ReportRepository

DEFAULT_VISIT_PAGE = 1000
MAX_VISIT_PAGE = 5000
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# -- GET /api/visits ----------------------------------------------------------------------------
def query_visits(
    area: str | None,
    store_id: str | None,
    *,
    startdate: str | None,
    enddate: str | None,
    limit: int | str | None,
    next_token: str | None,
    stores: StoreMaster,
    reports: ReportRepository,
    caller: Caller,
) -> dict:
    """Perimeters of the caller's succeeded images (an admin's: every client's) per store and visit
    date (UTC), one page of images at a time."""
    area = require_area(area, stores)
    store_id = store_id or None
    if store_id is not None:
        _require_store(store_id, area, stores)
    start = parse_bound(startdate, "startdate", end_of_day=False)
    end = parse_bound(enddate, "enddate", end_of_day=True)
    if start and end and end < start:
        raise InvalidRequest("enddate: before startdate")
    page_size = parse_limit(limit, default=DEFAULT_VISIT_PAGE, maximum=MAX_VISIT_PAGE)
    query = [caller.scope, area, store_id, start, end]
    after = decode_token(next_token, query, str, "query") if next_token else None
    try:
        images, cursor = reports.page_visits(
            area=area,
            store_id=store_id,
            start=start,
            end=end,
            after=after,
            limit=page_size,
            client_id=caller.client_filter,
        )
    except ValueError:
        raise InvalidRequest("next_token: malformed or not from this query") from None
    return {
        "results": _group(images, area, store_id, stores),
        "next_token": encode_token(query, cursor) if cursor else None,
    }


def parse_bound(raw: str | None, field: str, *, end_of_day: bool) -> str | None:
    """RFC 3339 date-time or YYYY-MM-DD -> canonical UTC time; a date-only end covers its whole day."""
    if raw is None or raw == "":
        return None
    if _DATE_ONLY.fullmatch(raw):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            day = None
        if day is not None:
            return f"{day.isoformat()}T{'23:59:59.999' if end_of_day else '00:00:00.000'}Z"
    else:
        moment = parse_visit_time(raw)
        if moment is not None:
            return moment
    raise InvalidRequest(f"{field}: must be YYYY-MM-DD or an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z")


def _group(images: list[VisitImage], area: str, store_id: str | None, stores: StoreMaster) -> list[dict]:
    by_store: dict[str, dict[str, list[int]]] = defaultdict(dict)
    if store_id is not None:
        by_store[store_id] = {}  # the store asked for is listed even without visits
    for image in images:  # in visit-time order
        perimeters = by_store[image.store_id].setdefault(image.visit_time_utc[:10], [])
        if image.status == "succeeded" and image.perimeter is not None:
            perimeters.append(image.perimeter)
    out = []
    for sid in sorted(by_store):
        store = stores.get(sid)
        out.append(
            {
                "store_id": sid,
                "area": area,
                "store_name": store.name if store else None,
                "data": [{"date": day, "perimeter": p} for day, p in sorted(by_store[sid].items())],
            }
        )
    return out


# -- GET /api/reports/areas, /api/reports/stores ----------------------------------------------------
def area_reports(*, stores: StoreMaster, reports: ReportRepository, caller: Caller) -> dict:
    """One entry per area of the Store Master, of the caller's images (an admin's: every client's)."""
    clients = _report_clients(caller, reports)
    return {
        "areas": [
            {"area": area, "stores": count, **_figures(reports.area_counters(area, clients))}
            for area, count in stores.areas().items()
        ]
    }


def store_reports(
    area: str | None, store_id: str | None, *, stores: StoreMaster, reports: ReportRepository, caller: Caller
) -> dict:
    """One entry per store of the area with anything counted (or just `store_id`), by store id, of
    the caller's images (an admin's: every client's)."""
    area = require_area(area, stores)
    store_id = store_id or None
    if store_id is not None:
        _require_store(store_id, area, stores)
    counters = reports.store_counters(area, store_id, _report_clients(caller, reports))
    if store_id is not None:
        counters.setdefault(store_id, ReportCounters())
    entries = []
    for sid, c in sorted(counters.items()):
        store = stores.get(sid)
        entries.append({"store_id": sid, "store_name": store.name if store else None, "area": area, **_figures(c)})
    return {"area": area, "stores_in_area": stores.areas()[area], "stores_reported": len(entries), "stores": entries}


def _report_clients(caller: Caller, reports: ReportRepository) -> list[str]:
    """Whose counters a report sums: a client's own; an admin's, every client's and those counted
    before reports were per client ("")."""
    return ["", *reports.clients()] if caller.admin else [caller.client_id]


def _figures(c: ReportCounters) -> dict:
    return {
        "visits": c.visits,
        "images": c.images,
        "failed_images": c.failed,
        "failure_rate": round(c.failed / c.images, 4) if c.images else None,
        # Processing time per attempt: a retried image's second attempt counts as one more.
        "mean_processing_ms": round(c.duration_ms / c.attempts, 1) if c.attempts else None,
        "last_visit": c.last_visit,
    }


# -- shared ------------------------------------------------------------------------------------
def require_area(area: str | None, stores: StoreMaster) -> str:
    if not area:
        raise InvalidRequest("area: required")
    if area not in stores.areas():
        raise AreaNotFound(f"area: no area {echo(area)} in the Store Master")
    return area


def _require_store(store_id: str, area: str, stores: StoreMaster) -> None:
    store = stores.get(store_id)
    if store is None:
        raise StoreNotFound(f"storeid: no store {echo(store_id)} in the Store Master")
    if store.area_code != area:
        raise StoreNotInArea(f"storeid: store {store_id} is in area {store.area_code}, not {area}")
