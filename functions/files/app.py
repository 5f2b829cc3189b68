"""POST /api/uploads, POST and GET /api/results/export: files in and out of the data bucket through
presigned URLs (manifests of any size in, results exports out)."""

# No `from __future__ import annotations`: Powertools reads the route parameters' annotations
# (Query types) at run time to validate and document them.
from typing import Annotated, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse import handler_kit as kit
from retail_pulse.api.responses import ApiResolver, api_cors, json_response, register_error_handlers
from retail_pulse.api.route_docs import documented
from retail_pulse.logic.exports import export_status, start_export
from retail_pulse.logic.manifests import create_upload

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
app = ApiResolver(enable_validation=True, cors=api_cors())
register_error_handlers(app, logger)


@documented(
    lambda schema: {
        "openapi_extensions": {
            "requestBody": {
                **schema.inline_request_body(schema.UploadRequest, "Optional: the file's size in bytes."),
                "required": False,
            }
        },
        "responses": {
            201: schema.json_content(
                schema.UploadCreated, "PUT the file to `upload_url`, then submit `upload_id` as `manifest`."
            ),
            400: schema.json_content(schema.ErrorBody, "A bad body."),
            413: schema.json_content(schema.ErrorBody, "A size over the largest manifest."),
        },
    }
)
@app.post(
    "/api/uploads",
    summary="A presigned URL to upload one manifest file (CSV, JSON Lines or a JSON job) for POST /api/submit",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def uploads():
    caller = kit.caller(app.current_event.raw_event)
    body = create_upload(app.current_event.decoded_body, settings=kit.settings(), files=kit.files(), caller=caller)
    logger.info("upload url issued", extra={"upload_id": body["upload_id"], "size": body["size"]})
    return json_response(201, body)


@documented(
    lambda schema: {
        "responses": {
            202: schema.json_content(schema.ExportStarted, "Started; follow `status_url` until `state` is `ready`."),
            400: schema.json_content(schema.ErrorBody, "Missing or unknown `jobid`, or a bad parameter."),
            503: schema.json_content(schema.EnqueueFailedBody, "The export could not be started."),
        }
    }
)
@app.post(
    "/api/results/export",
    summary="Export a job's results (all, or of one status) to a JSON Lines or CSV file",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def export_start(
    jobid: Annotated[str, Query(description="The `job_id` that submit returned.")],
    format: Annotated[Literal["jsonl", "csv"], Query(description="The file's format.")] = "jsonl",
    status: Annotated[Literal["failed", "succeeded"] | None, Query(description="Only results of this status.")] = None,
):
    caller = kit.caller(app.current_event.raw_event)
    body = start_export(
        jobid, format, status, jobs=kit.jobs(), exports=kit.jobs(), queue=kit.export_queue(), caller=caller
    )
    logger.info("export started", extra={"export_id": body["export_id"], "job_id": body["job_id"]})
    return json_response(202, body)


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.ExportState, "The export."),
            400: schema.json_content(schema.ErrorBody, "Missing or unknown `export_id`."),
        }
    }
)
@app.get(
    "/api/results/export",
    summary="An export's state, rows so far, and once ready the file's presigned URL",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def export_get(export_id: Annotated[str, Query(description="The `export_id` the export's start returned.")]):
    caller = kit.caller(app.current_event.raw_event)
    body = export_status(export_id, exports=kit.jobs(), files=kit.files(), settings=kit.settings(), caller=caller)
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
