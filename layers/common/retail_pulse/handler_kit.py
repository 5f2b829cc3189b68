"""What every `functions/*/app.py` shares, so that each handler has the same short shape:
parse the event, call one logic function with adapters from here, log, return.

- Adapters are built once per container, on first use, by name (`jobs()`, `queue()`, ...): one
  cached factory each, so tests clear them all with `clear_caches()`.
- `log_notices`: one log record per completion-notice outcome, written the same way everywhere.
- `batch_response`: Powertools' partial batch response from a verdict (which records failed, why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from retail_pulse.domain.tenancy import Caller, caller_of
from retail_pulse.logic.notify import NoticeOutcome, Notifier
from retail_pulse.settings import Settings, get_settings

if TYPE_CHECKING:  # adapters are imported by the factory that builds them: a function pays only for its own
    from concurrent.futures import ThreadPoolExecutor

    from retail_pulse.adapters.dynamodb.reports import DynamoReportRepository
    from retail_pulse.adapters.dynamodb.repository import DynamoJobRepository
    from retail_pulse.adapters.image_download import ImageDownloader
    from retail_pulse.adapters.s3 import S3JobSpecStore
    from retail_pulse.adapters.s3_files import S3Files
    from retail_pulse.adapters.sqs import SqsImageQueue, SqsRedelivery
    from retail_pulse.adapters.work_queues import SqsImageStream, SqsWorkQueue
    from retail_pulse.domain.store_master import StoreMaster
    from retail_pulse.logic.admission import Quotas

# The only library X-Ray patches (Tracer(patch_modules=...)): AWS calls are traced, and no
# `X-Amzn-Trace-Id` header is added to downloads from image hosts or to callbacks (requests and
# httplib stay unpatched).
TRACED_MODULES = ("botocore",)
SECRET_MAX_AGE_S = 300  # how long a function keeps the signing secret it read

_factories: list[Callable[[], Any]] = []


def _cached[Factory: Callable[[], Any]](factory: Factory) -> Factory:
    """One instance per container (built on first use, never at import)."""
    wrapped = cache(factory)
    _factories.append(wrapped)
    return wrapped  # type: ignore[return-value]


def caller(event: Mapping[str, Any]) -> Caller:
    """The client of an API Gateway REST proxy event: the id of the API key API Gateway checked
    (`requestContext.identity.apiKeyId`, which the request cannot set), admin when it is one of
    ADMIN_API_KEY_IDS. Without one (no key checked: `sam local start-api`) the client is
    `domain.tenancy.DEFAULT_CLIENT`."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    key_id = identity.get("apiKeyId")
    return caller_of(key_id if isinstance(key_id, str) else None, get_settings().admin_key_ids)


def settings() -> Settings:
    return get_settings()


@_cached
def quotas() -> Quotas | None:
    """Quotas of images in flight for process_image (None: no client quota is set; a job's own
    max_concurrency is then not kept either, as it is a share of that quota)."""
    from retail_pulse.logic.admission import Quotas

    quota = get_settings().client_image_quota
    if not quota:
        return None
    return Quotas(slots=jobs(), parking=jobs(), queue=queue(), jobs=jobs(), client_quota=quota)


@_cached
def jobs() -> DynamoJobRepository:
    from retail_pulse.adapters.dynamodb.repository import DynamoJobRepository

    settings = get_settings()
    return DynamoJobRepository(settings.jobs_table_name, result_writers=settings.result_write_concurrency)


@_cached
def reports() -> DynamoReportRepository:
    from retail_pulse.adapters.dynamodb.reports import DynamoReportRepository

    return DynamoReportRepository(get_settings().jobs_table_name)


@_cached
def queue() -> SqsImageQueue:
    from retail_pulse.adapters.sqs import SqsImageQueue

    return SqsImageQueue(get_settings().image_queue_url, get_settings().enqueue_concurrency)


@_cached
def redelivery() -> SqsRedelivery:
    from retail_pulse.adapters.sqs import SqsRedelivery

    return SqsRedelivery(get_settings().image_queue_url, get_settings().dead_letter_queue_url)


@_cached
def dead_letter_redelivery() -> SqsRedelivery:
    """Visibility changes of the dead-letter queue's own messages (its consumer's refused writes)."""
    from retail_pulse.adapters.sqs import SqsRedelivery

    return SqsRedelivery(get_settings().dead_letter_queue_url, get_settings().dead_letter_queue_url)


@_cached
def specs() -> S3JobSpecStore:
    from retail_pulse.adapters.s3 import S3JobSpecStore

    return S3JobSpecStore(get_settings().data_bucket_name)


@_cached
def files() -> S3Files:
    """The data bucket's files as streams, and presigned URLs (uploads, exports)."""
    from retail_pulse.adapters.s3_files import S3Files

    return S3Files(get_settings().data_bucket_name)


@_cached
def fanout_queue() -> SqsWorkQueue:
    from retail_pulse.adapters.work_queues import SqsWorkQueue

    return SqsWorkQueue(get_settings().fan_out_queue_url)


@_cached
def export_queue() -> SqsWorkQueue:
    from retail_pulse.adapters.work_queues import SqsWorkQueue

    return SqsWorkQueue(get_settings().export_queue_url)


def image_stream() -> SqsImageStream:
    """A new stream into the image queue (the fan-out's pass 2), on the cached queue's client."""
    from retail_pulse.adapters.work_queues import SqsImageStream

    return SqsImageStream(queue())


@_cached
def notifier() -> Notifier:
    return notifier_from_settings(get_settings())


@_cached
def downloader() -> ImageDownloader:
    from retail_pulse.adapters.image_download import ImageDownloader

    s = get_settings()
    return ImageDownloader(
        s.download_connect_timeout_s,
        s.download_read_timeout_s,
        s.max_image_bytes,
        allow_private=s.allow_private_image_hosts,
        attempts=s.download_attempts,
    )


@_cached
def image_pool() -> ThreadPoolExecutor:
    """The threads that download and measure a batch's images concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=get_settings().process_concurrency, thread_name_prefix="image")


def store_master() -> StoreMaster:
    """The Store Master (cached per container and re-checked for a new version, see store_master_source)."""
    from retail_pulse.adapters.store_master_source import load_store_master

    return load_store_master(get_settings().effective_store_master_uri)


def notifier_from_settings(s: Settings) -> Notifier:
    from retail_pulse.adapters.callbacks import SafeHttpCallbackSender
    from retail_pulse.adapters.safe_http import SafeHttpClient
    from retail_pulse.adapters.sns import SnsEventTopic

    return Notifier(
        topic=SnsEventTopic(s.job_events_topic_arn) if s.job_events_topic_arn else None,
        callbacks=SafeHttpCallbackSender(
            SafeHttpClient(
                allow_private=s.allow_private_image_hosts,
                connect_timeout=s.download_connect_timeout_s,
                read_timeout=s.download_read_timeout_s,
            )
        ),
        signing_secret=secret_reader(s.callback_signing_secret_arn),
    )


def secret_reader(arn: str) -> Callable[[], str]:
    """The signing secret's value, from Secrets Manager (Powertools parameters: cached for
    SECRET_MAX_AGE_S, so a rotated secret applies within that); "" when no secret is configured."""
    if not arn:
        return lambda: ""

    def read() -> str:
        from aws_lambda_powertools.utilities.parameters import get_secret

        return str(get_secret(arn, max_age=SECRET_MAX_AGE_S))

    return read


def clear_caches() -> None:
    """Forget every adapter and setting (tests change the environment between cases)."""
    from retail_pulse.adapters.store_master_source import clear_cache

    get_settings.cache_clear()
    clear_cache()
    for factory in _factories:
        factory.cache_clear()  # type: ignore[attr-defined]


def log_notices(logger: Logger, outcomes: Iterable[NoticeOutcome | None]) -> bool:
    """One record per notice outcome; True when every notice reached the topic."""
    complete = True
    for outcome in outcomes:
        if outcome is None:
            continue
        extra = {"job_id": outcome.job_id, "callback": outcome.callback}
        if outcome.complete:
            logger.info("job notice sent", extra=extra)
        else:
            # The notice stays owed on the job item; whoever meets the job next (or the sweeper) retries it.
            logger.error("job notice not sent", extra={**extra, "error": outcome.error})
            complete = False
    return complete


class RecordNotProcessed(Exception):
    """A record of the batch goes back to the queue (the message says why)."""


@cache
def _sqs_processor() -> Any:
    # Imported on first use: the API functions never load Powertools' batch utilities (cold start).
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def emit_storage_refusals(metrics: Any) -> None:
    """The DynamoDB refusals this invocation met (retried or not), as metrics the alarms watch."""
    from aws_lambda_powertools.metrics import MetricUnit

    refusals = jobs().take_refusals()
    for kind, name in (
        ("throttle", "StorageThrottles"),
        ("conflict", "StorageConflicts"),
        ("exhausted", "StorageRefused"),
    ):
        if refusals.get(kind):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=refusals[kind])


def batch_response(event: dict, context: Any, failed: Mapping[str, str]) -> dict:
    """Powertools' partial batch response: the records whose message id is in `failed` (id -> why)
    are reported as item failures, every other record is deleted from the queue."""

    from aws_lambda_powertools.utilities.batch import process_partial_response

    def record_handler(record: Any) -> None:  # an SQSRecord
        if record.message_id in failed:
            raise RecordNotProcessed(failed[record.message_id])

    # A PartialItemFailureResponse is a TypedDict: the plain dict Lambda serialises.
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=_sqs_processor(), context=context
    )
    return dict(response)


def stream_batch_response(event: dict, not_counted_from: str | None) -> dict:
    """The answer to a DynamoDB stream batch: Lambda checkpoints before `not_counted_from` (a record's
    SequenceNumber) and delivers the records from there again; the tumbling window's state is
    handed back unchanged (Lambda requires it in windowed mappings)."""
    failures = [{"itemIdentifier": not_counted_from}] if not_counted_from else []
    return {"batchItemFailures": failures, "state": event.get("state") or {}}
