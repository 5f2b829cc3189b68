"""Consumer of the image dead-letter queue: an image whose message kept failing ends as failed, so
its job still finishes (exactly once: the same conditional write as processing)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from retail_pulse import handler_kit as kit
from retail_pulse.domain.messages import task_from_message
from retail_pulse.domain.models import ImageTask
from retail_pulse.logic.notify import notify_ended_jobs
from retail_pulse.logic.unfinished import end_dead_letters

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    tasks: dict[str, ImageTask] = {}
    for record in event.get("Records", []):
        try:
            task = task_from_message(record["body"])
        except ValueError as exc:
            # Not one of our messages: nothing to attribute it to. Logged in full, then dropped.
            logger.error("malformed dead letter dropped", extra={"body": record.get("body"), "error": str(exc)})
            continue
        tasks[record["messageId"]] = task
        logger.warning(
            "image dead-lettered",
            extra={"job_id": task.job_id, "store_id": task.store_id, "image_index": task.index},
        )
    failed: dict[str, str] = {}
    try:
        finished = end_dead_letters(list(tasks.values()), jobs=kit.jobs())
        for job in finished:
            logger.info("job finished by the dead-letter consumer", extra={"job_id": job.job_id, "status": job.status})
        # The jobs this batch finished owe their completion notice (logic/notify.py); a failed
        # publish stays owed on the job item and is retried by whoever meets the job next.
        ended = [j.job_id for j in finished]
        kit.log_notices(logger, notify_ended_jobs(ended, [], jobs=kit.jobs(), notifier=kit.notifier()))
    except Exception:
        logger.exception("recording dead letters failed; they will be retried")
        failed = dict.fromkeys(tasks, "dead letters not recorded")
    metrics.add_metric(name="ImagesDeadLettered", unit=MetricUnit.Count, value=len(tasks))
    return kit.batch_response(event, context, failed)
