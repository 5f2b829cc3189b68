"""Scheduled: finishes jobs that made no progress for longer than the queue's whole retry window,
failing their unfinished images, so no job stays `ongoing` forever."""

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse.dynamodb_jobs import NOTICE_LEASE_S, DynamoJobRepository
from retail_pulse.job_events import notifier_from_settings
from retail_pulse.logic.notify import notify_ended_jobs, retry_owed_notices
from retail_pulse.logic.unfinished import sweep_stalled_jobs
from retail_pulse.s3_job_specs import S3JobSpecStore
from retail_pulse.settings import Settings, get_settings
from retail_pulse.validation import format_utc

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@lru_cache(maxsize=1)
def dependencies() -> tuple[Settings, DynamoJobRepository, S3JobSpecStore]:
    settings = get_settings()
    return settings, DynamoJobRepository(settings.jobs_table_name), S3JobSpecStore(settings.data_bucket_name)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    settings, jobs, specs = dependencies()

    def sweep_failed(job_id: str, exc: Exception) -> None:
        logger.exception("sweeping a stalled job failed; the next run tries again", extra={"job_id": job_id})

    swept = sweep_stalled_jobs(
        jobs=jobs, specs=specs, now=datetime.now(UTC), stall_after_s=settings.stall_after_s, on_error=sweep_failed
    )
    for job in swept:
        logger.warning(
            "stalled job finished",
            extra={"job_id": job.job_id, "idle_s": job.idle_s, "images_failed": job.images_failed},
        )
    notifier = notifier_from_settings(settings)
    ended = [job.finished.job_id for job in swept if job.finished is not None]
    outcomes = notify_ended_jobs(ended, [], jobs=jobs, notifier=notifier)
    # Notices an ending path could not publish (its lease has run out since): sent now, once.
    lease_expired = format_utc(datetime.now(UTC) - timedelta(seconds=NOTICE_LEASE_S))
    outcomes += retry_owed_notices(lease_expired, jobs=jobs, notifier=notifier)
    for outcome in outcomes:
        if not outcome.complete:
            logger.error("job notice not published", extra={"job_id": outcome.job_id, "error": outcome.topic_error})
    metrics.add_metric(name="StalledJobsFinished", unit=MetricUnit.Count, value=len(swept))
    return {"swept": [job.job_id for job in swept]}
