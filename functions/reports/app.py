"""GET /api/visits, /api/stores, /api/reports/areas, /api/reports/stores: reads only."""

# No `from __future__ import annotations`: Powertools reads the route parameters' annotations
# (Query types) at run time to validate and document them.
from typing import Annotated

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse import handler_kit as kit
from retail_pulse.api.responses import ApiResolver, api_cors, json_response, register_error_handlers
from retail_pulse.logic.reports import (
    DEFAULT_VISIT_PAGE,
    MAX_VISIT_PAGE,
    area_reports,
    query_visits,
    store_reports,
)
from retail_pulse.logic.stores import DEFAULT_STORES, MAX_STORES, search_stores

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
app = ApiResolver(enable_validation=True, cors=api_cors())
register_error_handlers(app, logger)

Area = Annotated[str, Query(description="An AreaCode of the Store Master.")]
StoreId = Annotated[str | None, Query(description="A StoreID of the Store Master, in `area`.")]


@app.get(
    "/api/visits",
    summary="Perimeters of a store's (or an area's) images per visit date, paged",
    tags=["visits"],
)
@tracer.capture_method(capture_response=False)
def visits(
    *,
    area: Area,
    storeid: StoreId = None,
    startdate: Annotated[
        str | None, Query(description="YYYY-MM-DD or an RFC 3339 date-time (as visit_time), inclusive, UTC.")
    ] = None,
    enddate: Annotated[
        str | None, Query(description="YYYY-MM-DD (the whole day) or an RFC 3339 date-time, inclusive.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_VISIT_PAGE, description="Images per page.")] = DEFAULT_VISIT_PAGE,
    next_token: Annotated[str | None, Query(description="From the previous page; omit for the first.")] = None,
):
    body = query_visits(
        area,
        storeid,
        startdate=startdate,
        enddate=enddate,
        limit=limit,
        next_token=next_token,
        stores=kit.store_master(),
        reports=kit.reports(),
        caller=kit.caller(app.current_event.raw_event),
    )
    return json_response(200, body)


@app.get("/api/stores", summary="Search the Store Master by name or id, ranked", tags=["stores"])
@tracer.capture_method(capture_response=False)
def store_search(
    q: Annotated[str | None, Query(description="Words of the name (any case, typos forgiven) or a StoreID.")] = None,
    area: Annotated[str | None, Query(description="Only stores of this AreaCode.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STORES, description="Stores returned.")] = DEFAULT_STORES,
):
    return json_response(200, search_stores(q, area, limit, stores=kit.store_master()))


@app.get(
    "/api/reports/areas",
    summary="Cumulative figures per area, of the caller's images (an admin key's: every client's)",
    tags=["reports"],
)
@tracer.capture_method(capture_response=False)
def areas_report():
    caller = kit.caller(app.current_event.raw_event)
    return json_response(200, area_reports(stores=kit.store_master(), reports=kit.reports(), caller=caller))


@app.get(
    "/api/reports/stores",
    summary="Cumulative figures per store of an area, of the caller's images (an admin key's: every client's)",
    tags=["reports"],
)
@tracer.capture_method(capture_response=False)
def stores_report(area: Area, storeid: StoreId = None):
    caller = kit.caller(app.current_event.raw_event)
    body = store_reports(area, storeid, stores=kit.store_master(), reports=kit.reports(), caller=caller)
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
