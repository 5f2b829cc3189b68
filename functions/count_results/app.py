"""DynamoDB stream consumer: counts new result items into their jobs and the reports, exactly once
(logic/counting.py), ends the jobs with nothing left, and sends their completion notices."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.adapters.dynamodb.counting import streamed_results
from retail_pulse.logic.counting import CountingIncomplete, count_results
from retail_pulse.logic.notify import notify_ended_jobs, send_event

# Seconds of the invocation kept for the completion notices of the jobs a batch ends.
NOTICE_RESERVE_S = 25.0

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()


def send_events(events: list[tuple[str, str]]) -> None:
    """Progress events this batch claimed (25/50/75 %, first failure): sent once, failures logged."""
    for job_id, claimed in events:
        try:
            outcome = send_event(job_id, claimed, jobs=kit.jobs(), notifier=kit.notifier())
        except Exception:
            logger.exception("job event not sent", extra={"job_id": job_id, "event": claimed})
            continue
        extra = {"job_id": job_id, "event": claimed, "callback": outcome.callback}
        if outcome.complete:
            logger.info("job event sent", extra=extra)
        else:
            logger.error("job event not sent", extra={**extra, "error": outcome.error})


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    shard, records = streamed_results(event)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - NOTICE_RESERVE_S
    not_counted_from = None
    try:
        counted = count_results(shard, records, counter=kit.jobs(), jobs=kit.jobs(), deadline=deadline)
    except CountingIncomplete as exc:
        logger.exception("counting stopped; Lambda delivers the rest again", extra={"from_sequence": exc.seq})
        not_counted_from, counted = exc.seq, None
    if counted is not None:
        metrics.add_metric(name="ResultsCounted", unit=MetricUnit.Count, value=counted.counted)
        if counted.dropped:
            logger.info("results of ended jobs dropped", extra={"results": counted.dropped})
        for job in counted.finished:
            logger.info(
                "job finished", extra={"job_id": job.job_id, "status": job.status, "duration_ms": job.duration_ms}
            )
            metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=job.duration_ms)
        # A notice that cannot be published now stays owed on its job: the stall sweeper sends it later.
        ended = [job.job_id for job in counted.finished]
        kit.log_notices(logger, notify_ended_jobs(ended, [], jobs=kit.jobs(), notifier=kit.notifier()))
        send_events(counted.events)
    kit.emit_storage_refusals(metrics)
    return kit.stream_batch_response(event, not_counted_from)
