"""GET /api/status, /api/results and /api/health: reads only; also the API's documentation."""

# No `from __future__ import annotations`: Powertools reads the route parameters' annotations
# (Query types) at run time to validate and document them.
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse import handler_kit as kit
from retail_pulse.api.docs import SWAGGER_ASSETS, document_for, stage_prefix, swagger_asset, swagger_page
from retail_pulse.api.responses import ApiResolver, api_cors, json_response, register_error_handlers
from retail_pulse.api.route_docs import documented
from retail_pulse.logic.status import DEFAULT_PAGE, MAX_PAGE, job_results, job_status

# Generated from both API functions by `make openapi` and packaged with this function, which serves it.
OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
# Swagger UI's assets are versioned by the layer's Powertools pin: browsers may keep them a day.
ASSET_CACHE_CONTROL = "public, max-age=86400"

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
app = ApiResolver(enable_validation=True, cors=api_cors())
register_error_handlers(app, logger)

BAD_REQUEST = "Missing or unknown `jobid`, or a bad parameter: `<field>: <problem>`."
JobId = Annotated[str, Query(description="The `job_id` that submit returned.")]


@cache
def openapi_document() -> str:
    return OPENAPI_DOCUMENT.read_text(encoding="utf-8")


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.JobStatus, "The job."),
            400: schema.json_content(schema.ErrorBody, BAD_REQUEST),
        }
    }
)
@app.get("/api/status", summary="A job's status, progress and per-store errors", tags=["jobs"])
@tracer.capture_method(capture_response=False)
def status(jobid: JobId):
    return json_response(200, job_status(jobid, jobs=kit.jobs(), caller=kit.caller(app.current_event.raw_event)))


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.ResultsPage, "One page of results."),
            400: schema.json_content(schema.ErrorBody, BAD_REQUEST),
        }
    }
)
@app.get(
    "/api/results",
    summary="A job's ended images, in submission order, paged; or as a live feed in the order they ended",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def results(
    jobid: JobId,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Results per page.")] = DEFAULT_PAGE,
    next_token: Annotated[str | None, Query(description="From the previous page; omit for the first.")] = None,
    order: Annotated[
        Literal["index", "processed"] | None,
        Query(
            description="`index` (default): submission order. `processed`: the results feed, in the order the "
            "images ended (were counted), from `since`; every result exactly once across pages."
        ),
    ] = None,
    since: Annotated[
        str | None, Query(description="Results feed: `next_since` of the previous page; omit to start at the first.")
    ] = None,
):
    caller = kit.caller(app.current_event.raw_event)
    body = job_results(jobid, limit, next_token, jobs=kit.jobs(), caller=caller, order=order, since=since)
    return json_response(200, body)


@documented(lambda schema: {"responses": {200: schema.json_content(schema.Health, "Up.")}})
@app.get("/api/health", summary="Liveness", tags=["operations"])
def health():
    return json_response(200, {"status": "ok"})


@app.get(
    "/api/openapi.json",
    summary="This OpenAPI document",
    tags=["operations"],
    responses={200: {"description": "OpenAPI 3.1 document of the whole API.", "content": {"application/json": {}}}},
)
def openapi_json():
    return Response(200, "application/json", document_for(openapi_document(), _base_path()))


@app.get(
    "/api/docs",
    summary="Swagger UI for this API",
    tags=["operations"],
    responses={200: {"description": "HTML page.", "content": {"text/html": {}}}},
)
def docs():
    base = _base_path()
    return Response(200, "text/html", swagger_page(document_for(openapi_document(), base), f"{base}/api/docs"))


def _base_path() -> str:
    request = app.current_event.request_context
    return stage_prefix(request.stage, request.path)


def _asset(name: str) -> Response:
    return Response(200, SWAGGER_ASSETS[name], swagger_asset(name), headers={"Cache-Control": ASSET_CACHE_CONTROL})


@app.get(
    "/api/docs/swagger-ui-bundle.min.js",
    summary="Swagger UI script (served here, not from a CDN)",
    tags=["operations"],
    responses={200: {"description": "JavaScript.", "content": {"text/javascript": {}}}},
)
def swagger_script():
    return _asset("swagger-ui-bundle.min.js")


@app.get(
    "/api/docs/swagger-ui.min.css",
    summary="Swagger UI stylesheet (served here, not from a CDN)",
    tags=["operations"],
    responses={200: {"description": "CSS.", "content": {"text/css": {}}}},
)
def swagger_stylesheet():
    return _asset("swagger-ui.min.css")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
