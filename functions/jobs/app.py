"""GET /api/jobs, POST /api/jobs/cancel, /pause, /resume, /retry: the job lifecycle; and
GET /api/callbacks/key, the key the callbacks of the caller's jobs are signed with."""

# No `from __future__ import annotations`: Powertools reads the route parameters' annotations
# (Query types) at run time to validate and document them.
import warnings
from typing import Annotated, Literal

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse import handler_kit as kit
from retail_pulse.api.responses import ApiResolver, api_cors, json_response, register_error_handlers
from retail_pulse.api.route_docs import documented
from retail_pulse.logic.jobs import (
    DEFAULT_JOBS_PAGE,
    MAX_JOBS_PAGE,
    cancel_job,
    list_jobs,
    parse_retry_filter,
    retry_job,
)
from retail_pulse.logic.notify import callback_key, notify_ended_jobs
from retail_pulse.logic.pause import pause_job, resume_job

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
app = ApiResolver(enable_validation=True, cors=api_cors())
register_error_handlers(app, logger)

JobId = Annotated[str, Query(description="The `job_id` that submit returned.")]
UNKNOWN_JOB = "Missing or unknown `jobid`."


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.JobsPage, "One page of jobs."),
            400: schema.json_content(schema.ErrorBody, "A bad parameter."),
        }
    }
)
@app.get(
    "/api/jobs",
    summary="The caller's jobs (an admin key's: every client's), newest first, paged (optionally of one status)",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def jobs_list(
    status: Annotated[
        Literal["ongoing", "paused", "completed", "failed", "cancelled"] | None,
        Query(description="Only jobs of this status."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_JOBS_PAGE, description="Jobs per page.")] = DEFAULT_JOBS_PAGE,
    next_token: Annotated[str | None, Query(description="From the previous page; omit for the first.")] = None,
    label: Annotated[
        str | None,
        Query(description="Only jobs with this label, as `key:value` (from the label's index: no scan)."),
    ] = None,
):
    caller = kit.caller(app.current_event.raw_event)
    return json_response(200, list_jobs(status, limit, next_token, jobs=kit.jobs(), caller=caller, label=label))


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(
                schema.JobStatus, "Cancelled; the job's status (`cancelled`, with `progress.cancelled`)."
            ),
            400: schema.json_content(schema.ErrorBody, UNKNOWN_JOB),
            409: schema.json_content(schema.ErrorBody, "The job has already ended."),
        }
    }
)
@app.post(
    "/api/jobs/cancel",
    summary="Cancel an ongoing or paused job: its remaining images are skipped",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def jobs_cancel(jobid: JobId):
    caller = kit.caller(app.current_event.raw_event)
    body, outcome = cancel_job(jobid, jobs=kit.jobs(), notifier=kit.notifier(), caller=caller, parking=kit.jobs())
    logger.info("job cancelled", extra={"job_id": body["job_id"], "cancelled": body["progress"].get("cancelled")})
    kit.log_notices(logger, [outcome])
    return json_response(200, body)


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.JobStatus, "Paused; the job's status (`paused`)."),
            400: schema.json_content(schema.ErrorBody, UNKNOWN_JOB),
            409: schema.json_content(schema.ErrorBody, "The job is not ongoing (paused already, or ended)."),
        }
    }
)
@app.post(
    "/api/jobs/pause",
    summary="Pause an ongoing job: no new image of it is downloaded until it is resumed",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def jobs_pause(jobid: JobId):
    body = pause_job(jobid, jobs=kit.jobs(), caller=kit.caller(app.current_event.raw_event))
    logger.info("job paused", extra={"job_id": body["job_id"]})
    return json_response(200, body)


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.JobStatus, "Resumed; the job's status (`ongoing`) and `replayed`."),
            400: schema.json_content(schema.ErrorBody, UNKNOWN_JOB),
            409: schema.json_content(schema.ErrorBody, "The job is not paused."),
        }
    }
)
@app.post(
    "/api/jobs/resume",
    summary="Resume a paused job: its parked images go back to the queue",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def jobs_resume(jobid: JobId):
    caller = kit.caller(app.current_event.raw_event)
    body = resume_job(
        jobid, jobs=kit.jobs(), parking=kit.jobs(), queue=kit.queue(), caller=caller, fanout=kit.fanout_queue()
    )
    logger.info("job resumed", extra={"job_id": body["job_id"], "replayed": body.get("replayed")})
    return json_response(200, body)


@documented(
    lambda schema: {
        "responses": {
            201: schema.json_content(
                schema.RetryAccepted | schema.RetryFannedOut,
                "The new job; follow `status_url`. Over RETRY_INLINE_MAX_IMAGES failed images, it is `accepted` and "
                "fanned out like a manifest job (the filter applied by the fan-out: matching none, the new job ends "
                "`failed` and the job may be retried again).",
            ),
            400: schema.json_content(schema.ErrorBody, "Missing or unknown `jobid`, or a bad filter."),
            409: schema.json_content(
                schema.ErrorBody,
                "The job is ongoing or paused, has no failed images (matching the filter), or was already retried.",
            ),
            503: schema.json_content(
                schema.EnqueueFailedBody, "The images could not be enqueued; the new job is marked failed."
            ),
        }
    }
)
@app.post(
    "/api/jobs/retry",
    summary="Retry the failed images of an ended job as a new job (optionally only some of them)",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def jobs_retry(
    jobid: JobId,
    error_class: Annotated[
        Literal["transient", "permanent", "store"] | None,
        Query(
            description="Only failed images of this class: transient (timeouts, connection errors, 429/5xx after "
            "retries, dead-lettered, stalled), permanent (404 and other 4xx, not an image, too big, refused URL), "
            "store (store_id not in the Store Master)."
        ),
    ] = None,
    store_id: Annotated[str | None, Query(description="Only these stores: comma-separated store ids (<= 100).")] = None,
    index: Annotated[
        str | None, Query(description="Only these images: comma-separated indexes in the job (<= 1,000).")
    ] = None,
):
    retry_filter = parse_retry_filter(error_class, store_id, index)
    accepted = retry_job(
        jobid,
        settings=kit.settings(),
        jobs=kit.jobs(),
        queue=kit.queue(),
        stores=kit.store_master(),
        caller=kit.caller(app.current_event.raw_event),
        specs=kit.specs(),
        on_job_ended=send_notice,
        retry_filter=retry_filter,
        fanout=kit.fanout_queue(),
    )
    extra = {"job_id": accepted["job_id"], "retry_of": jobid, "images": accepted.get("total")}
    logger.info("job retried", extra={**extra, "phase": accepted.get("phase")})
    return json_response(201, accepted)


@documented(
    lambda schema: {
        "responses": {
            200: schema.json_content(schema.CallbackKey, "The caller's own key."),
            400: schema.json_content(schema.ErrorBody, "Callbacks are disabled on this deployment."),
        }
    }
)
@app.get(
    "/api/callbacks/key",
    summary="The key that signs the callbacks of the caller's jobs (each client has its own)",
    tags=["jobs"],
)
@tracer.capture_method(capture_response=False)
def callbacks_key():
    caller = kit.caller(app.current_event.raw_event)
    return json_response(200, callback_key(caller, kit.notifier().signing_secret))


def send_notice(job_id: str) -> None:
    """The notice of a retry job that ended as it was created (or whose enqueueing failed)."""
    kit.log_notices(logger, notify_ended_jobs([job_id], [], jobs=kit.jobs(), notifier=kit.notifier()))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
