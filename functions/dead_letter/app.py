"""Consumer of the image dead-letter queue: each image ends, so its job still finishes. An image
whose result processing measured but could not write arrives with that result and is recorded as
measured; any other ends failed. The same exactly-once write as processing."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.messages import dead_letter_from_message
from retail_pulse.domain.models import ImageResult, ImageTask
from retail_pulse.domain.retry import redelivery_delay_s
from retail_pulse.logic.unfinished import end_dead_letters

logger = Logger()
# X-Ray patches botocore only: no trace header goes to image hosts or callback URLs (requests, httplib).
tracer = Tracer(patch_modules=kit.TRACED_MODULES)
metrics = Metrics()


def come_back_soon(event: dict, failed: dict[str, str]) -> None:
    """Letters whose write DynamoDB refused come back in seconds, not after the queue's visibility
    timeout (as process_image does for its images); best effort: else the timeout brings them back."""
    soon = [
        (r["receiptHandle"], redelivery_delay_s(int((r.get("attributes") or {}).get("ApproximateReceiveCount") or 1)))
        for r in event.get("Records", [])
        if r.get("messageId") in failed
    ]
    if not soon:
        return
    try:
        kit.dead_letter_redelivery().retry_later(soon)
    except Exception:
        logger.exception("could not shorten the visibility of unrecorded dead letters; the queue's timeout applies")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    letters: dict[str, tuple[ImageTask, ImageResult | None]] = {}
    for record in event.get("Records", []):
        try:
            task, carried = dead_letter_from_message(record["body"])
        except ValueError as exc:
            # Not one of our messages: nothing to attribute it to. Logged in full, then dropped.
            logger.error("malformed dead letter dropped", extra={"body": record.get("body"), "error": str(exc)})
            continue
        letters[record["messageId"]] = (task, carried)
        logger.warning(
            "image dead-lettered",
            extra={
                "job_id": task.job_id,
                "store_id": task.store_id,
                "image_index": task.index,
                "carried_result": carried.status if carried else None,
            },
        )
    failed: dict[str, str] = {}
    try:
        outcome = end_dead_letters(list(letters.values()), jobs=kit.jobs())
    except Exception:
        logger.exception("recording dead letters failed; they will be retried")
        failed = dict.fromkeys(letters, "dead letters not recorded")
    else:
        refused = {(r.task.job_id, r.task.index) for r in outcome.refused}
        failed = {m: "not recorded yet" for m, (task, _) in letters.items() if (task.job_id, task.index) in refused}
        come_back_soon(event, failed)
    metrics.add_metric(name="ImagesDeadLettered", unit=MetricUnit.Count, value=len(letters))
    kit.emit_storage_refusals(metrics)
    return kit.batch_response(event, context, failed)
