"""Jobs of any size, the submit side: a manifest uploaded to the data bucket and a job accepted at
once; its images are checked and enqueued afterwards by the fan-out (logic/fanout.py). No boto3 here.

- `create_upload`: POST /api/uploads, a presigned PUT URL for one manifest file.
- `submit_request`: POST /api/submit, inline visits (logic/submit.py, within the inline limit) or
  `{"manifest": upload_id}`: the job item `accepted`, one message to the fan-out's queue.
- `retry_by_fanout`: jobs/retry of many failed images: the same fan-out, the image list being the
  failed results of the retried job, read in submission order a page at a time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.errors import EnqueueFailed, InvalidRequest, JobConflict, RequestTooLarge
from retail_pulse.domain.fanout import (
    ACCEPTED,
    SNIFF_BYTES,
    SOURCE_MANIFEST,
    SOURCE_RETRY,
    upload_key,
)
from retail_pulse.domain.manifest import ManifestInvalid, sniff
from retail_pulse.domain.models import Job
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.tenancy import Caller
from retail_pulse.domain.validation import (
    _check_no_credentials,
    _check_text,
    is_http_url,
    parse_job_controls,
)
from retail_pulse.logic.jobs import RetryFilter
from retail_pulse.logic.submit import CALLBACKS_DISABLED, new_job_id, submit_job
from retail_pulse.ports import (
    EnqueueError,
    FanOutRepository,
    Files,
    ImageQueue,
    JobRepository,
    JobSpecStore,
    WorkQueue,
)
from retail_pulse.settings import Settings

# Lambda refuses a synchronous event over 6 MB, and API Gateway's event holds the body JSON-escaped
# (every quote and backslash doubled) beside the headers (twice: `headers`, `multiValueHeaders`; at
# most 10 KB as sent), the query string (twice) and the request context. An inline body is accepted
# up to what leaves the rest of the event this much room: the whole event always fits.
LAMBDA_EVENT_BYTES = 6 * 1024 * 1024
EVENT_ALLOWANCE_BYTES = 96 * 1024
MAX_INLINE_BODY_BYTES = LAMBDA_EVENT_BYTES - EVENT_ALLOWANCE_BYTES
UPLOADS_PATH = "/api/uploads"
UPLOAD_HINT = (
    f"send bigger jobs as a manifest: POST {UPLOADS_PATH}, PUT the file to its upload_url, then POST "
    '/api/submit {"manifest": upload_id}'
)
MANIFEST_REQUEST_MAX = 8192  # a manifest submit is an id, an optional callback_url, threshold and labels: small
# A manifest submit's fields: the job-control fields of an inline submit apply to the manifest's job.
MANIFEST_SUBMIT_FIELDS = {
    "manifest",
    "callback_url",
    "tolerated_failure_percentage",
    "tolerated_failure_count",
    "labels",
    "max_concurrency",
}
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


# -- POST /api/uploads ---------------------------------------------------------------------------------
def create_upload(
    body: str | None, *, settings: Settings, files: Files, caller: Caller, make_id: Callable[[], str] = new_job_id
) -> dict:
    """A presigned PUT URL for one manifest file. With `{"size": bytes}` the URL takes exactly that
    many bytes (S3 checks the signed Content-Length); without, the size is checked at submit."""
    size = None
    if body:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise InvalidRequest("body: not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidRequest("body: expected a JSON object")
        size = data.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InvalidRequest("size: must be a positive integer (the file's bytes)")
        if size is not None and size > settings.max_manifest_bytes:
            raise RequestTooLarge(f"size: a manifest may hold at most {settings.max_manifest_bytes} bytes")
    upload_id = make_id()
    url = files.presign_put(upload_key(caller.client_id, upload_id), size, settings.upload_url_expiry_s)
    expires_at = format_utc(datetime.now(UTC) + timedelta(seconds=settings.upload_url_expiry_s))
    answer = {"upload_id": upload_id, "upload_url": url, "expires_at": expires_at, "method": "PUT"}
    return answer | {"max_bytes": settings.max_manifest_bytes, "size": size}


# -- POST /api/submit ----------------------------------------------------------------------------------
def inline_event_bytes(body: str) -> int:
    """What the body takes in API Gateway's event: JSON-escaped, as UTF-8."""
    return len(json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")) - 2


def check_inline_size(body: str | None) -> None:
    if body and len(body) * 2 > MAX_INLINE_BODY_BYTES and inline_event_bytes(body) > MAX_INLINE_BODY_BYTES:
        raise RequestTooLarge(
            f"body: {inline_event_bytes(body)} bytes once JSON-escaped in API Gateway's event, over the inline "
            f"limit of {MAX_INLINE_BODY_BYTES} that keeps the whole event within Lambda's 6 MB; {UPLOAD_HINT}",
            limit_bytes=MAX_INLINE_BODY_BYTES,
            upload=UPLOADS_PATH,
        )


def manifest_request(body: str | None) -> dict | None:
    """The body of a manifest submit (`{"manifest": ...}`), or None for an inline one."""
    if not body or len(body) > MANIFEST_REQUEST_MAX or '"manifest"' not in body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and "manifest" in data else None


class SubmitJobs(JobRepository, FanOutRepository, Protocol):
    """What submit needs: inline jobs (logic/submit.py) and manifest jobs."""


def submit_request(
    body: str | None,
    *,
    settings: Settings,
    jobs: SubmitJobs,
    queue: ImageQueue,
    stores: StoreMaster,
    specs: JobSpecStore | None,
    files: Files,
    fanout: WorkQueue,
    client_id: str,
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
) -> dict:
    """POST /api/submit: a manifest job (accepted at once, fanned out later), or an inline one; the
    job belongs to client `client_id`."""
    data = manifest_request(body)
    if data is not None:
        return submit_manifest(
            data,
            settings=settings,
            jobs=jobs,
            files=files,
            fanout=fanout,
            client_id=client_id,
            on_job_ended=on_job_ended,
            make_job_id=make_job_id,
        )
    check_inline_size(body)
    try:
        return submit_job(
            body,
            settings=settings,
            jobs=jobs,
            queue=queue,
            stores=stores,
            client_id=client_id,
            specs=specs,
            on_job_ended=on_job_ended,
            make_job_id=make_job_id,
        )
    except RequestTooLarge as exc:
        if exc.extra or not exc.message.startswith("a job may hold at most"):
            raise
        # More images than an inline job holds: a manifest holds up to max_images_per_manifest.
        raise RequestTooLarge(
            f"{exc.message}; a manifest may hold up to {settings.max_images_per_manifest} images: {UPLOAD_HINT}",
            upload=UPLOADS_PATH,
        ) from None


def callback_url_of(value: object, settings: Settings) -> str | None:
    if value is None:
        return None
    if not is_http_url(value):
        raise InvalidRequest("callback_url: must be an absolute http(s) URL")
    _check_text(value, "callback_url", settings.max_url_length)  # type: ignore[arg-type]
    _check_no_credentials(value, "callback_url")  # type: ignore[arg-type]
    if not settings.callbacks_enabled:
        raise InvalidRequest(CALLBACKS_DISABLED)
    return value  # type: ignore[return-value]


def submit_manifest(
    data: dict,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    fanout: WorkQueue,
    client_id: str,
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
) -> dict:
    """The job of an uploaded manifest (the client's own upload): checked enough to be sure it is one
    (it exists, its size, its format), then accepted at once; the fan-out checks every row and
    enqueues the images."""
    extra = sorted(set(data) - MANIFEST_SUBMIT_FIELDS)
    if extra:
        raise InvalidRequest(f"{extra[0]}: not with a manifest (send either visits or a manifest)")
    upload_id = data["manifest"]
    if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
        raise InvalidRequest(f"manifest: must be an upload_id from POST {UPLOADS_PATH}")
    callback_url = callback_url_of(data.get("callback_url"), settings)
    threshold, labels, max_concurrency = parse_job_controls(data)  # as an inline submit's
    key = upload_key(client_id, upload_id)
    stored = files.head(key)
    if stored is None:
        raise InvalidRequest(
            f"manifest: no file uploaded as {upload_id} (PUT it to the upload_url first; uploads expire)"
        )
    if stored.size == 0:
        raise InvalidRequest("manifest: the uploaded file is empty")
    if stored.size > settings.max_manifest_bytes:
        limit = settings.max_manifest_bytes
        raise RequestTooLarge(f"manifest: {stored.size} bytes; a manifest may hold at most {limit}")
    try:
        fmt = sniff(files.read_start(key, stored.version, SNIFF_BYTES))
    except ManifestInvalid as exc:
        raise InvalidRequest(f"manifest: {exc.message}") from None
    job_id = make_job_id()
    created_at = utc_now()
    manifest = {"key": key, "version": stored.version, "bytes": stored.size, "format": fmt}
    jobs.create_fanout_job(
        job_id,
        created_at,
        _expires_at(settings),
        source=SOURCE_MANIFEST,
        manifest=manifest,
        callback_url=callback_url,
        threshold=threshold if threshold.set else None,
        labels=labels,
        client_id=client_id,
        max_concurrency=max_concurrency,
    )
    _start_fanout(job_id, jobs=jobs, fanout=fanout, on_job_ended=on_job_ended)
    return {"job_id": job_id, "status_url": f"/api/status?jobid={job_id}", "phase": ACCEPTED, "format": fmt}


def _expires_at(settings: Settings) -> int:
    return int(time.time()) + settings.job_ttl_days * 86_400


def _start_fanout(
    job_id: str, *, jobs: FanOutRepository, fanout: WorkQueue, on_job_ended: Callable[[str], None] | None
) -> None:
    try:
        fanout.send({"job_id": job_id})
    except EnqueueError as exc:
        reason = f"starting the fan-out failed: {exc}"
        jobs.mark_failed(job_id, reason, utc_now())  # type: ignore[attr-defined]
        if on_job_ended:
            on_job_ended(job_id)
        raise EnqueueFailed(reason, job_id=job_id) from None


# -- POST /api/jobs/retry of many failed images ----------------------------------------------------------
def retry_by_fanout(
    job: Job,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    fanout: WorkQueue,
    on_job_ended: Callable[[str], None] | None = None,
    client_id: str,
    make_job_id: Callable[[], str] = new_job_id,
    retry_filter: RetryFilter | None = None,
) -> dict:
    """A retry job whose image list is the failed results of `job` (those `retry_filter` matches),
    fanned out like a manifest; it keeps the retried job's labels and max_concurrency."""
    retry_id = make_job_id()
    if not jobs.link_retry(job.job_id, retry_id):  # type: ignore[attr-defined]
        raise JobConflict(f"jobid: job {job.job_id} was already retried (or is ongoing)")
    try:
        jobs.create_fanout_job(
            retry_id,
            utc_now(),
            _expires_at(settings),
            source=SOURCE_RETRY,
            callback_url=job.callback_url,
            retry_of=job.job_id,
            labels=job.labels,
            max_concurrency=job.max_concurrency,
            retry_filter=retry_filter.to_dict() if retry_filter is not None else None,
            client_id=client_id,
        )
    except Exception:
        jobs.unlink_retry(job.job_id, retry_id)
        raise
    _start_fanout(retry_id, jobs=jobs, fanout=fanout, on_job_ended=on_job_ended)
    status_url = f"/api/status?jobid={retry_id}"
    return {"job_id": retry_id, "status_url": status_url, "retry_of": job.job_id, "phase": ACCEPTED}
