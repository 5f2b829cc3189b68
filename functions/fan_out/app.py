"""SQS consumer of the fan-out queue: moves a job accepted from a manifest (or a big retry) through its
phases, resuming from its checkpoint (logic/fanout.fan_out), and walks stalled fanned-out jobs for
the stall sweeper (logic/fanout_sweep.sweep_walk). Out of time, it hands on through its own queue."""

from __future__ import annotations

import json
import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.retry import redelivery_delay_s
from retail_pulse.logic.fanout import fan_out, give_up
from retail_pulse.logic.fanout_sweep import sweep_walk
from retail_pulse.logic.notify import notify_ended_jobs

# Seconds of the invocation kept after the work stops (the last checkpoint, the hand-on message).
RESERVE_S = 20.0
# The message is kept from other consumers for the invocation's time and this much more: after a
# crash it comes back then, and the job's lease (the invocation's time + 20 s) has run out.
HOLD_MARGIN_S = 30
BUSY_RETRY_S = 60  # another invocation holds the job's lease: look again then

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()


def fan_out_job(job_id: str, deadline: float, owner: str) -> str:
    result = fan_out(
        job_id,
        settings=kit.settings(),
        jobs=kit.jobs(),
        files=kit.files(),
        images=kit.image_stream,
        stores=kit.store_master(),
        owner=owner,
        deadline=deadline,
    )
    logger.info(
        "fan-out", extra={"job_id": job_id, "outcome": result.outcome, "phase": result.phase, "images": result.images}
    )
    if result.phase == "ongoing" or (result.phase == "enqueuing" and result.outcome == "continue"):
        metrics.add_metric(name="ImagesEnqueued", unit=MetricUnit.Count, value=result.images)
    if result.outcome == "continue":
        kit.fanout_queue().send({"job_id": job_id})  # the next invocation goes on from the checkpoint
    if result.finished is not None:  # refused: the job ended here and owes its notice
        metrics.add_metric(name="ManifestsRefused", unit=MetricUnit.Count, value=1)
        kit.log_notices(logger, notify_ended_jobs([job_id], [], jobs=kit.jobs(), notifier=kit.notifier()))
    return result.outcome


def walk_stalled_job(job_id: str, sweep: dict, deadline: float) -> None:
    walked = sweep_walk(
        job_id,
        str(sweep["error"]),
        sweep.get("pos"),
        settings=kit.settings(),
        jobs=kit.jobs(),
        files=kit.files(),
        stores=kit.store_master(),
        deadline=deadline,
    )
    logger.warning("stalled job walked", extra={"job_id": job_id, "images_failed": walked.written})
    if walked.position is not None:
        kit.fanout_queue().send({"job_id": job_id, "sweep": {**sweep, "pos": walked.position}})


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    failed: dict[str, str] = {}
    queue = kit.fanout_queue()
    for record in event.get("Records", []):
        try:
            message = json.loads(record["body"])
            job_id = str(message["job_id"])
        except (ValueError, KeyError, TypeError):
            logger.error("malformed fan-out message dropped", extra={"body": record.get("body")})
            continue
        receives = int((record.get("attributes") or {}).get("ApproximateReceiveCount") or 1)
        remaining_s = context.get_remaining_time_in_millis() / 1000
        try:
            queue.hold(record["receiptHandle"], int(remaining_s) + HOLD_MARGIN_S)
        except Exception:
            logger.warning("could not hold the fan-out message; a second consumer may meet the job's lease")
        deadline = time.monotonic() + remaining_s - RESERVE_S
        try:
            if "sweep" in message:
                walk_stalled_job(job_id, message["sweep"], deadline)
                continue
            if fan_out_job(job_id, deadline, context.aws_request_id) == "busy":
                queue.hold(record["receiptHandle"], BUSY_RETRY_S)
                failed[record["messageId"]] = "another invocation holds the job's fan-out"
        except Exception as exc:
            if receives >= kit.settings().fan_out_max_receives and "sweep" not in message:
                logger.exception("fan-out failed on its last delivery: the job fails", extra={"job_id": job_id})
                if give_up(job_id, str(exc)[:300], jobs=kit.jobs()) is not None:
                    kit.log_notices(logger, notify_ended_jobs([job_id], [], jobs=kit.jobs(), notifier=kit.notifier()))
                continue
            logger.exception("fan-out failed; it goes on from its checkpoint soon", extra={"job_id": job_id})
            try:
                queue.hold(record["receiptHandle"], redelivery_delay_s(receives))
            except Exception:
                logger.warning("could not shorten the fan-out message's visibility")
            failed[record["messageId"]] = "fan-out failed"
    kit.emit_storage_refusals(metrics)
    return kit.batch_response(event, context, failed)
