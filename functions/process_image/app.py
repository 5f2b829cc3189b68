"""SQS batch consumer: measure a batch's images concurrently, record them in one write."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from retail_pulse.dynamodb_jobs import DynamoJobRepository
from retail_pulse.imaging import ImageDownloader
from retail_pulse.job_events import notifier_from_settings
from retail_pulse.logic.notify import Notifier, notify_ended_jobs
from retail_pulse.logic.process import ProcessedBatch, process_images
from retail_pulse.models import ImageTask
from retail_pulse.settings import Settings, get_settings
from retail_pulse.sqs_queue import task_from_message

# Seconds kept back from the invocation's remaining time for the batch's write.
WRITE_RESERVE_S = 5.0

logger = Logger()
tracer = Tracer()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class MalformedMessage(Exception):
    pass


class BatchNotRecorded(Exception):
    pass


class NoticeNotPublished(Exception):
    pass


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    return notifier_from_settings(get_settings())


@lru_cache(maxsize=1)
def dependencies() -> tuple[Settings, DynamoJobRepository, ImageDownloader, ThreadPoolExecutor]:
    settings = get_settings()
    downloader = ImageDownloader(
        settings.download_connect_timeout_s,
        settings.download_read_timeout_s,
        settings.max_image_bytes,
        allow_private=settings.allow_private_image_hosts,
        attempts=settings.download_attempts,
    )
    pool = ThreadPoolExecutor(max_workers=settings.process_concurrency, thread_name_prefix="image")
    return settings, DynamoJobRepository(settings.jobs_table_name), downloader, pool


def record_outcome(batch: ProcessedBatch) -> None:
    """One log record per failed image (debug for the rest) and the batch's metrics, as EMF."""
    for r in batch.results:
        keys = {"job_id": r.task.job_id, "store_id": r.task.store_id, "image_index": r.task.index}
        if r.status == "failed":
            logger.warning("image failed", extra={**keys, "error": r.error})
        else:
            logger.debug("image succeeded", extra={**keys, "download_ms": r.download_ms, "image_bytes": r.image_bytes})
        if r.download_ms is not None:
            metrics.add_metric(name="DownloadTime", unit=MetricUnit.Milliseconds, value=r.download_ms)
        if r.image_bytes is not None:
            metrics.add_metric(name="ImageBytes", unit=MetricUnit.Bytes, value=r.image_bytes)
    succeeded = sum(1 for r in batch.results if r.status == "succeeded")
    metrics.add_metric(name="ImagesSucceeded", unit=MetricUnit.Count, value=succeeded)
    metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=len(batch.results) - succeeded)
    for job in batch.finished_jobs:
        logger.info("job finished", extra={"job_id": job.job_id, "status": job.status, "duration_ms": job.duration_ms})
        metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=job.duration_ms)


def send_notices(batch: ProcessedBatch) -> bool:
    """Completion notices of the jobs this batch ended, and of ended jobs it met that still owe one."""
    finished = [job.job_id for job in batch.finished_jobs]
    if not finished and not batch.notices_owed:
        return True
    _, jobs, _, _ = dependencies()
    try:
        outcomes = notify_ended_jobs(finished, batch.notices_owed, jobs=jobs, notifier=notifier())
    except Exception:
        logger.exception("sending job notices failed; SQS will redeliver the batch to retry them")
        return False
    for outcome in outcomes:
        extra = {"job_id": outcome.job_id, "callback": outcome.callback}
        if outcome.complete:
            logger.info("job notice sent", extra=extra)
        else:
            logger.error("job notice not published", extra={**extra, "error": outcome.topic_error})
    return all(outcome.complete for outcome in outcomes)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    settings, jobs, downloader, pool = dependencies()
    tasks: dict[str, ImageTask] = {}
    for record in event.get("Records", []):
        try:
            tasks[record["messageId"]] = task_from_message(record["body"])
        except ValueError as exc:
            logger.warning("malformed message", extra={"message_id": record.get("messageId"), "error": str(exc)})

    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - WRITE_RESERVE_S
    recorded = True
    try:
        batch = process_images(
            list(tasks.values()), settings=settings, jobs=jobs, fetch=downloader.fetch, pool=pool, deadline=deadline
        )
    except Exception:
        # Our infrastructure failed (e.g. DynamoDB throttling): every record goes back to the queue.
        logger.exception("recording the batch failed; SQS will redeliver it")
        recorded = False
    else:
        # Metrics count the work of recorded batches; an image redelivered after a crash is counted
        # again here (rare), while the job's own counters stay exact.
        record_outcome(batch)
    notices_published = not recorded or send_notices(batch)

    def record_handler(record: SQSRecord) -> None:
        if record.message_id not in tasks:
            raise MalformedMessage(record.message_id)
        if not recorded:
            raise BatchNotRecorded(record.message_id)
        if not notices_published:
            # The results are recorded; the redelivery only retries the notice (logic/notify.py).
            raise NoticeNotPublished(record.message_id)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
