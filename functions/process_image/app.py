"""SQS batch consumer: measure a batch's images concurrently, record them in one write."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.messages import task_from_message
from retail_pulse.domain.models import ImageTask
from retail_pulse.logic.notify import notify_ended_jobs
from retail_pulse.logic.process import ProcessedBatch, process_images

# Seconds kept back from the invocation's remaining time for the batch's write.
WRITE_RESERVE_S = 5.0

logger = Logger()
tracer = Tracer()
metrics = Metrics()  # namespace from POWERTOOLS_METRICS_NAMESPACE


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
    try:
        outcomes = notify_ended_jobs(finished, batch.notices_owed, jobs=kit.jobs(), notifier=kit.notifier())
    except Exception:
        logger.exception("sending job notices failed; SQS will redeliver the batch to retry them")
        return False
    return kit.log_notices(logger, outcomes)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    tasks: dict[str, ImageTask] = {}
    failed: dict[str, str] = {}
    for record in event.get("Records", []):
        try:
            tasks[record["messageId"]] = task_from_message(record["body"])
        except ValueError as exc:
            logger.warning("malformed message", extra={"message_id": record.get("messageId"), "error": str(exc)})
            failed[record["messageId"]] = "malformed message"

    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - WRITE_RESERVE_S
    try:
        batch = process_images(
            list(tasks.values()),
            settings=kit.settings(),
            jobs=kit.jobs(),
            fetch=kit.downloader().fetch,
            pool=kit.image_pool(),
            deadline=deadline,
        )
    except Exception:
        # Our infrastructure failed (e.g. DynamoDB throttling): every record goes back to the queue.
        logger.exception("recording the batch failed; SQS will redeliver it")
        failed.update(dict.fromkeys(tasks, "batch not recorded"))
    else:
        # Metrics count the work of recorded batches; an image redelivered after a crash is counted
        # again here (rare), while the job's own counters stay exact.
        record_outcome(batch)
        if not send_notices(batch):
            # The results are recorded; the redelivery only retries the notice (logic/notify.py).
            failed.update(dict.fromkeys(tasks, "notice not published"))
    return kit.batch_response(event, context, failed)
