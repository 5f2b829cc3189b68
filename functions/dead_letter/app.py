"""Consumer of the image dead-letter queue: an image whose message kept failing ends as failed, so
its job still finishes (exactly once: the same conditional write as processing)."""

from functools import lru_cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from retail_pulse.dynamodb_jobs import DynamoJobRepository
from retail_pulse.job_events import notifier_from_settings
from retail_pulse.logic.notify import Notifier, notify_ended_jobs
from retail_pulse.logic.unfinished import end_dead_letters
from retail_pulse.models import ImageTask
from retail_pulse.settings import get_settings
from retail_pulse.sqs_queue import task_from_message

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class BatchNotRecorded(Exception):
    pass


@lru_cache(maxsize=1)
def dependencies() -> DynamoJobRepository:
    return DynamoJobRepository(get_settings().jobs_table_name)


@lru_cache(maxsize=1)
def notifier() -> Notifier:
    return notifier_from_settings(get_settings())


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    jobs = dependencies()
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
    recorded = True
    try:
        finished = end_dead_letters(list(tasks.values()), jobs=jobs)
        for job in finished:
            logger.info("job finished by the dead-letter consumer", extra={"job_id": job.job_id, "status": job.status})
        # The jobs this batch finished owe their completion notice (logic/notify.py); a failed
        # publish stays owed on the job item and is retried by whoever meets the job next.
        for outcome in notify_ended_jobs([j.job_id for j in finished], [], jobs=jobs, notifier=notifier()):
            if not outcome.complete:
                logger.error("job notice not published", extra={"job_id": outcome.job_id, "error": outcome.topic_error})
    except Exception:
        logger.exception("recording dead letters failed; they will be retried")
        recorded = False
    metrics.add_metric(name="ImagesDeadLettered", unit=MetricUnit.Count, value=len(tasks))

    def record_handler(record: SQSRecord) -> None:
        if record.message_id in tasks and not recorded:
            raise BatchNotRecorded(record.message_id)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
