"""SQS batch consumer: measure a batch's images concurrently, record them in one write."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from retail_pulse.dynamodb_jobs import DynamoJobRepository
from retail_pulse.imaging import ImageDownloader
from retail_pulse.logic.process import process_images
from retail_pulse.models import ImageTask
from retail_pulse.settings import Settings, get_settings
from retail_pulse.sqs_queue import task_from_message

# Seconds kept back from the invocation's remaining time for the batch's write.
WRITE_RESERVE_S = 5.0

logger = Logger()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class MalformedMessage(Exception):
    pass


class BatchNotRecorded(Exception):
    pass


@lru_cache(maxsize=1)
def dependencies() -> tuple[Settings, DynamoJobRepository, ImageDownloader, ThreadPoolExecutor]:
    settings = get_settings()
    downloader = ImageDownloader(
        settings.download_connect_timeout_s, settings.download_read_timeout_s, settings.max_image_bytes
    )
    pool = ThreadPoolExecutor(max_workers=settings.process_concurrency, thread_name_prefix="image")
    return settings, DynamoJobRepository(settings.jobs_table_name), downloader, pool


@logger.inject_lambda_context
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
        results = process_images(
            list(tasks.values()), settings=settings, jobs=jobs, fetch=downloader.fetch, pool=pool, deadline=deadline
        )
        for r in results:
            logger.debug(
                "image ended",
                extra={"job_id": r.task.job_id, "store_id": r.task.store_id, "index": r.task.index, "status": r.status},
            )
    except Exception:
        # Our infrastructure failed (e.g. DynamoDB throttling): every record goes back to the queue.
        logger.exception("recording the batch failed; SQS will redeliver it")
        recorded = False

    def record_handler(record: SQSRecord) -> None:
        if record.message_id not in tasks:
            raise MalformedMessage(record.message_id)
        if not recorded:
            raise BatchNotRecorded(record.message_id)

    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
