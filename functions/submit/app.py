"""POST /api/submit: validate, write the job, enqueue one message per image."""

from __future__ import annotations

import warnings
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.adapters.idempotency import IdempotentSubmit
from retail_pulse.api.responses import ApiResolver, api_cors, json_response, register_error_handlers
from retail_pulse.api.route_docs import documented
from retail_pulse.logic.manifests import submit_request
from retail_pulse.logic.notify import notify_ended_jobs

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE
# A rejected request has no metric to publish; Powertools would warn about that on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
# REST API: "/api/submit/" resolves here too, as API Gateway routes it. The body is checked by
# retail_pulse.domain.validation (its errors name the exact field), and the only parameter is the
# Idempotency-Key header: no Powertools validation (nor pydantic: ~50 ms of INIT) is needed.
app = ApiResolver(enable_validation=False, cors=api_cors())
register_error_handlers(app, logger)


def send_notice(job_id: str) -> None:
    """The notice of a job that ended at submit (every store unknown, or enqueueing failed)."""
    kit.log_notices(logger, notify_ended_jobs([job_id], [], jobs=kit.jobs(), notifier=kit.notifier()))


def submit_body(body: str | None, client_id: str) -> dict:
    """Inline visits, or an uploaded manifest (`{"manifest": upload_id}`: accepted at once, fanned out)."""
    return submit_request(
        body,
        settings=kit.settings(),
        jobs=kit.jobs(),
        queue=kit.queue(),
        stores=kit.store_master(),
        specs=kit.specs(),
        files=kit.files(),
        fanout=kit.fanout_queue(),
        client_id=client_id,
        on_job_ended=send_notice,
    )


@cache
def idempotent_submit() -> IdempotentSubmit:
    return IdempotentSubmit(kit.settings().idempotency_table_name, submit_body)


@documented(
    lambda schema: {
        "openapi_extensions": {
            "requestBody": schema.one_of_request_body(
                "The job: `count` visits inline, or `manifest`: the upload_id of a file uploaded through /api/uploads.",
                schema.SubmitRequest,
                schema.ManifestSubmitRequest,
            )
        },
        "responses": {
            201: schema.json_content(
                schema.SubmitAccepted | schema.ManifestAccepted,
                "Accepted; follow `status_url`. A manifest job is `accepted` at once: its rows are checked and its "
                "images enqueued afterwards (status `phase`).",
            ),
            400: schema.json_content(
                schema.ErrorBody, "Bad input: `<field path>: <problem>`, e.g. `visits[2].image_url[0]: ...`."
            ),
            409: schema.json_content(
                schema.ErrorBody, "The Idempotency-Key header was used with another body (or is in progress)."
            ),
            413: schema.json_content(
                schema.TooLargeBody,
                "An inline body over the limit that keeps API Gateway's event within Lambda's 6 MB (`limit_bytes`), "
                "or more images than MAX_IMAGES_PER_JOB: upload a manifest instead (`upload`).",
            ),
            503: schema.json_content(
                schema.EnqueueFailedBody, "The images could not be enqueued; the job is marked failed."
            ),
        },
    }
)
@app.post(
    "/api/submit",
    summary="Submit a job: visits with their image URLs, or an uploaded manifest of up to 1,000,000 images",
    tags=["jobs"],
)
def submit():
    event = app.current_event
    key = next((v for k, v in (event.headers or {}).items() if k.lower() == "idempotency-key"), None)
    client_id = kit.caller(event.raw_event).client_id  # the job belongs to the API key that submits it
    accepted = idempotent_submit()(key, event.decoded_body, app.lambda_context, client_id)
    images = accepted.get("total")
    logger.info("job accepted", extra={"job_id": accepted["job_id"], "images": images, "phase": accepted.get("phase")})
    if images is not None:
        metrics.add_metric(name="SubmitSize", unit=MetricUnit.Count, value=images)
    return json_response(201, accepted)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
