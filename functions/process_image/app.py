"""SQS batch consumer: measure a batch's images concurrently, write one result per image (the
table's stream counts them: functions/count_results)."""

from __future__ import annotations

import os
import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.messages import task_from_message, unrecorded_result_message
from retail_pulse.domain.models import ImageTask
from retail_pulse.logic.notify import notify_ended_jobs
from retail_pulse.logic.pause import park_images
from retail_pulse.logic.process import ProcessedBatch, Unrecorded, process_images, settle_unrecorded

# Seconds of the invocation kept for the results' writes (with their retries) after the downloads,
# and for handing refused results over after the writes: the batch always answers in time.
WRITE_RESERVE_S = 5.0
SETTLE_RESERVE_S = 3.0

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
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
    # Images ended by this batch's writes (a result an earlier delivery wrote is not counted again).
    written = batch.recorded.written
    succeeded = sum(1 for r in written if r.status == "succeeded")
    metrics.add_metric(name="ImagesSucceeded", unit=MetricUnit.Count, value=succeeded)
    metrics.add_metric(name="ImagesFailed", unit=MetricUnit.Count, value=len(written) - succeeded)


def send_owed_notices(batch: ProcessedBatch) -> bool:
    """Notices still owed by ended jobs this batch met (an earlier send failed); each goes out once,
    by whoever wins its lease. False when one could not be published (the batch comes again)."""
    if not batch.notices_owed:
        return True
    try:
        outcomes = notify_ended_jobs([], batch.notices_owed, jobs=kit.jobs(), notifier=kit.notifier())
    except Exception:
        logger.exception("sending owed job notices failed; SQS will redeliver the batch to retry them")
        return False
    return kit.log_notices(logger, outcomes)


def settle(unrecorded: Unrecorded, receipts: dict[tuple[str, int], tuple[str, str]]) -> dict[str, str]:
    """Results our storage refused: their messages come back in seconds; on their last delivery they
    go to the dead-letter queue with their results. Returns the records that stay in the queue."""
    failed: dict[str, str] = {}
    soon = [(receipts[(r.task.job_id, r.task.index)], delay) for r, delay in unrecorded.retry_soon]
    for (message_id, _), _ in soon:
        failed[message_id] = "result not written: delivered again soon"
    if soon:
        try:
            kit.redelivery().retry_later([(receipt, delay) for (_, receipt), delay in soon])
        except Exception:
            logger.exception("could not shorten the visibility of unwritten images; the queue's timeout applies")
    if unrecorded.hand_to_dead_letters:
        reason = "its result could not be written: DynamoDB refused the write on every delivery"
        bodies = [unrecorded_result_message(r, reason) for r in unrecorded.hand_to_dead_letters]
        try:
            kit.redelivery().hand_to_dead_letters(bodies)
        except Exception:
            logger.exception("could not hand unwritten results to the dead-letter queue; SQS moves them there")
            for r in unrecorded.hand_to_dead_letters:
                failed[receipts[(r.task.job_id, r.task.index)][0]] = "result not written"
        else:
            metrics.add_metric(
                name="ResultsHandedToDeadLetters", unit=MetricUnit.Count, value=len(unrecorded.hand_to_dead_letters)
            )
    return failed


def park(batch: ProcessedBatch, receipts: dict[tuple[str, int], tuple[str, str]]) -> dict[str, str]:
    """Images of paused jobs: parked until their job resumes (logic/pause.py), their messages then
    acknowledged. Returns the records that stay in the queue (parking failed: SQS delivers them again)."""
    if not batch.parked:
        return {}
    try:
        outcome = park_images(batch.parked, jobs=kit.jobs(), parking=kit.jobs(), queue=kit.queue())
    except Exception:
        logger.exception("parking the images of a paused job failed; SQS will redeliver them")
        return {receipts[(t.job_id, t.index)][0]: "not parked" for t in batch.parked}
    logger.info(
        "images of paused jobs parked",
        extra={"parked": outcome.parked, "replayed": outcome.replayed, "dropped": outcome.dropped},
    )
    metrics.add_metric(name="ImagesParked", unit=MetricUnit.Count, value=outcome.parked)
    return {}


def log_quota(batch: ProcessedBatch) -> None:
    """What the batch's quota work left to notice: replays that failed (their images stay parked
    for the next release or the stall sweeper), images measured without a claim (throttled counter)."""
    for error in batch.released.errors:
        logger.warning(
            "replaying images parked over quota failed; a later release replays them", extra={"error": error}
        )
    if batch.admission.unclaimed:
        metrics.add_metric(name="ImagesWithoutQuotaClaim", unit=MetricUnit.Count, value=batch.admission.unclaimed)


def park_capped(batch: ProcessedBatch, receipts: dict[tuple[str, int], tuple[str, str]]) -> dict[str, str]:
    """Images over their client's quota or their job's max_concurrency: parked until slots free up
    (logic/admission.py), their messages then acknowledged. Returns the records that stay in the queue."""
    quotas = kit.quotas()
    capped = batch.admission.capped
    if not capped or quotas is None:
        return {}
    try:
        replayed = quotas.park_capped(batch.admission)
    except Exception:
        logger.exception("parking capped images failed; SQS will redeliver them")
        return {receipts[(t.job_id, t.index)][0]: "not parked" for tasks in capped.values() for t in tasks}
    logger.info("images over quota parked", extra={"parked": batch.admission.capped_images, "replayed": replayed})
    metrics.add_metric(name="ImagesOverQuota", unit=MetricUnit.Count, value=batch.admission.capped_images)
    return {}


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    tasks: list[ImageTask] = []
    receipts: dict[tuple[str, int], tuple[str, str]] = {}  # image -> (message id, receipt handle)
    receive_counts: dict[tuple[str, int], int] = {}
    failed: dict[str, str] = {}
    for record in event.get("Records", []):
        try:
            task = task_from_message(record["body"])
        except ValueError as exc:
            logger.warning("malformed message", extra={"message_id": record.get("messageId"), "error": str(exc)})
            failed[record["messageId"]] = "malformed message"
            continue
        tasks.append(task)
        receipts[(task.job_id, task.index)] = (record["messageId"], record["receiptHandle"])
        count = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        receive_counts[(task.job_id, task.index)] = max(count, receive_counts.get((task.job_id, task.index), 0))

    # Downloads end first, then writes; what is left covers handing refused results over.
    write_deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SETTLE_RESERVE_S
    settings = kit.settings()
    try:
        batch = process_images(
            tasks,
            settings=settings,
            jobs=kit.jobs(),
            fetch=kit.downloader().fetch,
            pool=kit.image_pool(),
            deadline=write_deadline - WRITE_RESERVE_S,
            write_deadline=write_deadline,
            # Lambda's own variable (the function's MemorySize): each image's cost share is priced with it.
            memory_mb=int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 512),
            quotas=kit.quotas(),
        )
    except Exception:
        # Our infrastructure failed before any result could be written: every record comes again.
        logger.exception("processing the batch failed; SQS will redeliver it")
        failed.update({message_id: "batch not processed" for message_id, _ in receipts.values()})
    else:
        # Metrics count the work done; an image redelivered after a crash is counted again here
        # (rare), while the job's own counters stay exact.
        record_outcome(batch)
        unrecorded = settle_unrecorded(batch.recorded.refused, receive_counts, settings.max_receive_count)
        failed.update(settle(unrecorded, receipts))
        failed.update(park(batch, receipts))
        failed.update(park_capped(batch, receipts))
        log_quota(batch)
        if not send_owed_notices(batch):
            failed.update({message_id: "notice not published" for message_id, _ in receipts.values()})
    kit.emit_storage_refusals(metrics)
    return kit.batch_response(event, context, failed)
