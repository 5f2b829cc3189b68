"""Jobs of any size: a manifest uploaded to the data bucket, a job accepted at once, its images checked
and enqueued afterwards by the fan-out, which resumes where it stopped. No boto3 here.

- `create_upload`: POST /api/uploads, a presigned PUT URL for one manifest file.
- `submit_request`: POST /api/submit, inline visits (logic/submit.py, within the inline limit) or
  `{"manifest": upload_id}`: the job item `accepted`, one message to the fan-out's queue.
- `fan_out`: the fan-out function's work (domain/fanout.py for the phases). Pass 1 reads the whole
  image list and checks every row (nothing is enqueued while any row could be invalid); then total
  and remaining are set at once, and pass 2 enqueues one message per image. Both passes record their
  position on the job item (a checkpoint) at least every CHECKPOINT_IMAGES images or CHECKPOINT_S
  seconds, under a lease: a crash or a timeout redoes at most that much (SQS may then carry an image
  twice; its result is written once, see logic/process.py), and an invocation running out of time
  hands on to the next through the queue.
- `retry_by_fanout`: jobs/retry of many failed images: the same fan-out, the image list being the
  failed results of the retried job, read in submission order a page at a time.
- `sweep_fanned_out` / `sweep_walk`: the stall sweeper's way with such jobs (their image list is the
  manifest itself, streamed; no second copy is written).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.errors import EnqueueFailed, InvalidRequest, JobConflict, RequestTooLarge
from retail_pulse.domain.fanout import (
    ACCEPTED,
    CHECKPOINT_IMAGES,
    CHECKPOINT_S,
    ENQUEUING,
    FANOUT_PHASES,
    MAX_MANIFEST_ERRORS,
    ONGOING,
    SNIFF_BYTES,
    SOURCE_MANIFEST,
    SOURCE_RETRY,
    FanOutJob,
    upload_key,
)
from retail_pulse.domain.manifest import Entry, ManifestInvalid, Position, read, sniff
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask, Job, Visit
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.validation import (
    InputLimits,
    _check_no_credentials,
    _check_text,
    is_http_url,
    parse_job_controls,
)
from retail_pulse.logic.jobs import RetryFilter
from retail_pulse.logic.submit import CALLBACKS_DISABLED, STORE_NOT_FOUND, new_job_id, submit_job
from retail_pulse.logic.unfinished import SweptJob
from retail_pulse.ports import (
    EnqueueError,
    FanOutRepository,
    Files,
    ImageQueue,
    ImageStream,
    JobRepository,
    JobSpecStore,
    StorageRefused,
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
}
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
LEASE_MARGIN_S = 20  # the fan-out's lease outlives its invocation by this much (the message's hold: more)
SWEEP_WRITES = 500  # failed results of a stalled job written per batch


# -- POST /api/uploads ---------------------------------------------------------------------------------
def create_upload(
    body: str | None, *, settings: Settings, files: Files, make_id: Callable[[], str] = new_job_id
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
    url = files.presign_put(upload_key(upload_id), size, settings.upload_url_expiry_s)
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
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
) -> dict:
    """POST /api/submit: a manifest job (accepted at once, fanned out later), or an inline one."""
    data = manifest_request(body)
    if data is not None:
        return submit_manifest(
            data,
            settings=settings,
            jobs=jobs,
            files=files,
            fanout=fanout,
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
    if not settings.callback_signing_secret.get_secret_value():
        raise InvalidRequest(CALLBACKS_DISABLED)
    return value  # type: ignore[return-value]


def submit_manifest(
    data: dict,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    fanout: WorkQueue,
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
) -> dict:
    """The job of an uploaded manifest: checked enough to be sure it is one (it exists, its size, its
    format), then accepted at once; the fan-out checks every row and enqueues the images."""
    extra = sorted(set(data) - MANIFEST_SUBMIT_FIELDS)
    if extra:
        raise InvalidRequest(f"{extra[0]}: not with a manifest (send either visits or a manifest)")
    upload_id = data["manifest"]
    if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
        raise InvalidRequest(f"manifest: must be an upload_id from POST {UPLOADS_PATH}")
    callback_url = callback_url_of(data.get("callback_url"), settings)
    threshold, labels = parse_job_controls(data)  # as an inline submit's (failure threshold, labels)
    key = upload_key(upload_id)
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
    make_job_id: Callable[[], str] = new_job_id,
    retry_filter: RetryFilter | None = None,
) -> dict:
    """A retry job whose image list is the failed results of `job` (those `retry_filter` matches),
    fanned out like a manifest; it keeps the retried job's labels."""
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
            retry_filter=retry_filter.to_dict() if retry_filter is not None else None,
        )
    except Exception:
        jobs.unlink_retry(job.job_id, retry_id)
        raise
    _start_fanout(retry_id, jobs=jobs, fanout=fanout, on_job_ended=on_job_ended)
    status_url = f"/api/status?jobid={retry_id}"
    return {"job_id": retry_id, "status_url": status_url, "retry_of": job.job_id, "phase": ACCEPTED}


# -- the image list of a fanned-out job ------------------------------------------------------------------
class RetryReader:
    """The failed images of the retried job, in submission order, as manifest entries: one image each,
    the position's offset being the retried job's image index (read on from there)."""

    callback_url = None

    def __init__(
        self, jobs: FanOutRepository, job_id: str, start: Position, retry_filter: RetryFilter | None = None
    ) -> None:
        self.jobs, self.job_id, self.start = jobs, job_id, start
        self.retry_filter = retry_filter  # a selective retry: only the failed results it matches

    def __iter__(self) -> Iterator[Entry]:
        images = self.start.images
        for result in self.jobs.iter_results(self.job_id, start=self.start.offset, status="failed"):
            if self.retry_filter is not None and not self.retry_filter.matches(result):  # type: ignore[arg-type]
                continue
            task = result.task  # type: ignore[union-attr]
            here = Position(task.index, task.index + 1, images, images)
            images += 1
            end = Position(task.index + 1, task.index + 2, images, images)
            visit = Visit(task.store_id, (task.image_url,), task.visit_time, task.visit_time_utc or "")
            yield Entry(task.index + 1, here, end, visit, first_in_visit=False)


def entries(
    job: FanOutJob, start: Position, *, jobs: FanOutRepository, files: Files, settings: Settings, check: bool
) -> Iterable[Entry]:
    if job.source == SOURCE_RETRY:
        retry_filter = RetryFilter.from_dict(job.retry_filter) if job.retry_filter else None
        return RetryReader(jobs, job.retry_of or "", start, retry_filter)
    chunks = files.stream(job.manifest_key or "", job.manifest_version, start.offset)
    return read(
        job.manifest_format or "",
        chunks,
        start,
        limits=InputLimits.from_settings(settings),
        max_images=settings.max_images_per_manifest,
        check=check,
    )


def tasks_of(entry: Entry, job: FanOutJob, stores: StoreMaster) -> tuple[list[ImageTask], bool]:
    """The entry's images as tasks (their index: their place in the list), and whether their store is
    in the Store Master (else they end failed at once, as at an inline submit)."""
    visit = entry.visit
    assert visit is not None
    store = stores.get(visit.store_id)
    area = (store.area_code or None) if store else None
    retry = job.source == SOURCE_RETRY
    first = entry.start.images
    tasks = [
        ImageTask(
            job.job_id,
            first + j,
            visit.store_id,
            url,
            visit.visit_time,
            job.expires_at,
            area=area,
            visit_time_utc=visit.visit_time_utc,
            first_in_visit=entry.first_in_visit and j == 0 and not retry,
            retried=retry,
        )
        for j, url in enumerate(visit.image_urls)
    ]
    return tasks, store is not None


# -- the fan-out -----------------------------------------------------------------------------------------
@dataclass
class FanOutResult:
    outcome: str  # done | continue (out of time: go on in a new invocation) | refused | busy | stopped | skipped
    job_id: str
    images: int = 0  # images checked (accepted) or enqueued (enqueuing) by this call
    finished: FinishedJob | None = None  # refused: the job ended here, its notice owed to this caller
    phase: str | None = None


class _Pass:
    """When a pass records its position (and whether it is out of time)."""

    def __init__(self, deadline: float, clock: Callable[[], float], images: int) -> None:
        self.deadline, self.clock = deadline, clock
        self.started = images
        self.at_images, self.at_time = images, clock()

    def due(self, images: int) -> bool:
        return images - self.at_images >= CHECKPOINT_IMAGES or self.clock() - self.at_time >= CHECKPOINT_S

    def done(self, images: int) -> None:
        self.at_images, self.at_time = images, self.clock()

    @property
    def out_of_time(self) -> bool:
        return self.clock() >= self.deadline


def fan_out(  # noqa: PLR0911 - one return per way a fan-out call ends
    job_id: str,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    images: Callable[[], ImageStream],
    stores: StoreMaster,
    owner: str,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> FanOutResult:
    """Moves the job on from where its last checkpoint left it, until it is `ongoing` (every image
    enqueued), refused, or `deadline` (clock()) comes: then `continue`."""
    job = jobs.fanout_job(job_id)
    if job is None or job.status != "ongoing":
        return FanOutResult("skipped", job_id, phase=job.phase if job else None)
    if job.phase not in FANOUT_PHASES:
        return FanOutResult("done", job_id, phase=job.phase)
    until = datetime.now(UTC) + timedelta(seconds=max(0.0, deadline - clock()) + LEASE_MARGIN_S)
    if not jobs.claim_fanout(job_id, owner, format_utc(until)):
        return FanOutResult("busy", job_id, phase=job.phase)
    try:
        if job.phase == ACCEPTED:
            checked = _check_pass(
                job, settings=settings, jobs=jobs, files=files, owner=owner, deadline=deadline, clock=clock
            )
            if checked.outcome != "done":
                return checked
            job = jobs.fanout_job(job_id)
            if job is None or job.status != "ongoing" or job.phase != ENQUEUING:
                return FanOutResult("stopped", job_id)
            if clock() >= deadline:
                return FanOutResult("continue", job_id, checked.images, phase=ENQUEUING)
        return _enqueue_pass(
            job,
            settings=settings,
            jobs=jobs,
            files=files,
            images=images,
            stores=stores,
            owner=owner,
            deadline=deadline,
            clock=clock,
        )
    finally:
        jobs.release_fanout(job_id, owner)


def _check_pass(
    job: FanOutJob,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    owner: str,
    deadline: float,
    clock: Callable[[], float],
) -> FanOutResult:
    """Pass 1: every row checked, none enqueued. Ends refused (invalid rows, none at all), or with the
    job `enqueuing` and its total set."""
    position = Position.from_json(job.position)
    errors, error_count = list(job.errors), job.error_count
    started = position.images
    step = _Pass(deadline, clock, position.images)
    reader = entries(job, position, jobs=jobs, files=files, settings=settings, check=True)
    try:
        for entry in reader:
            if entry.error is not None:
                error_count += 1
                if len(errors) < MAX_MANIFEST_ERRORS:
                    errors.append({"line": entry.line, "error": entry.error})
            position = entry.end
            if step.due(position.images) or step.out_of_time:
                saved = jobs.checkpoint_fanout(
                    job.job_id,
                    owner,
                    position.to_json(),
                    validated=position.images,
                    errors=errors,
                    error_count=error_count,
                )
                if not saved:
                    return FanOutResult("stopped", job.job_id, position.images - started)
                step.done(position.images)
                if step.out_of_time:
                    return FanOutResult("continue", job.job_id, position.images - started, phase=ACCEPTED)
    except ManifestInvalid as exc:  # nothing after this line can be read
        error_count += 1
        if len(errors) < MAX_MANIFEST_ERRORS:
            errors.append({"line": exc.line, "error": exc.message})
    total = position.images
    reason = None
    if error_count:
        reason = f"manifest: {error_count} invalid row(s), see manifest_errors; nothing of it was processed"
    elif total == 0:
        message = "the manifest holds no images"
        if job.source == SOURCE_RETRY:
            message = "no failed images to retry" + (" matching the filter" if job.retry_filter else "")
        errors, error_count, reason = [{"line": position.line, "error": message}], 1, f"manifest: {message}"
    callback_url = getattr(reader, "callback_url", None)
    signed = bool(settings.callback_signing_secret.get_secret_value())
    if reason is None and callback_url and not job.callback_url and not signed:
        errors, error_count = [{"line": position.line, "error": CALLBACKS_DISABLED}], 1
        reason = f"manifest: {CALLBACKS_DISABLED}"
    if reason is not None:
        finished = jobs.refuse_manifest(
            job.job_id, owner, errors=errors, error_count=error_count, reason=reason, finished_at=utc_now()
        )
        if finished is not None and job.source == SOURCE_RETRY and job.retry_of:
            # Nothing was retried: the retried job may be retried again (another filter, say).
            jobs.unlink_retry(job.retry_of, job.job_id)
        return FanOutResult("refused", job.job_id, total - started, finished=finished)
    if not jobs.start_enqueuing(job.job_id, owner, total, None if job.callback_url else callback_url):
        return FanOutResult("stopped", job.job_id, total - started)
    return FanOutResult("done", job.job_id, total - started, phase=ENQUEUING)


def _enqueue_pass(
    job: FanOutJob,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    images: Callable[[], ImageStream],
    stores: StoreMaster,
    owner: str,
    deadline: float,
    clock: Callable[[], float],
) -> FanOutResult:
    """Pass 2: one message per image of a known store, a failed result for the others (each written
    once: a result's write is conditional), from the last checkpoint on."""
    position = Position.from_json(job.position)
    started = position.images
    step = _Pass(deadline, clock, position.images)
    unknown: list[ImageResult] = []
    stream = images()

    def commit() -> bool:
        stream.flush()  # every image before `position` is in the queue
        if unknown:
            outcome = jobs.record_results(unknown)  # type: ignore[attr-defined]
            if outcome.refused:
                raise StorageRefused(f"{len(outcome.refused)} results of unknown stores not written")
            unknown.clear()
        step.done(position.images)
        return jobs.checkpoint_fanout(job.job_id, owner, position.to_json(), enqueued=min(position.images, job.total))

    try:
        for entry in entries(job, position, jobs=jobs, files=files, settings=settings, check=False):
            tasks, known = tasks_of(entry, job, stores)
            for task in tasks:
                if task.index >= job.total:
                    break  # the list cannot grow; a retried job's list could only shrink
                if known:
                    stream.put(task)
                else:
                    error = STORE_NOT_FOUND.format(store_id=task.store_id)
                    unknown.append(ImageResult(task, "failed", utc_now(), error=error, error_class="store"))
            position = entry.end
            if step.due(position.images) or len(unknown) >= SWEEP_WRITES or step.out_of_time:
                if not commit():
                    return FanOutResult("stopped", job.job_id, position.images - started)
                if step.out_of_time:
                    return FanOutResult("continue", job.job_id, position.images - started, phase=ENQUEUING)
            if position.images >= job.total:
                break
        if not commit():
            return FanOutResult("stopped", job.job_id, position.images - started)
    finally:
        stream.close()
    enqueued = min(position.images, job.total)
    if not jobs.finish_enqueuing(job.job_id, owner, enqueued, job.total - enqueued):
        return FanOutResult("stopped", job.job_id, enqueued - started)
    return FanOutResult("done", job.job_id, enqueued - started, phase=ONGOING)


def give_up(job_id: str, reason: str, *, jobs: JobRepository) -> FinishedJob | None:
    """The fan-out kept failing (its queue's last delivery): the job fails, its images not enqueued
    counted failed (those enqueued are dropped as they end: the job is no longer ongoing)."""
    return jobs.mark_failed(job_id, f"the fan-out kept failing: {reason}", utc_now())


# -- the stall sweeper's way with fanned-out jobs --------------------------------------------------------
def sweep_fanned_out(
    job_id: str, idle_s: int, *, jobs: FanOutRepository, sweeps: WorkQueue, now: datetime
) -> tuple[bool, SweptJob | None]:
    """(handled, swept) for a stalled job: (False, None) when it is not a fanned-out job. Stalled in a
    fan-out phase (its fan-out kept failing): the job fails. Stalled once enqueued: a walk of its image
    list (the manifest, streamed) fails the images without a result, in the fan-out function."""
    job = jobs.fanout_job(job_id)
    if job is None or job.source is None:
        return False, None
    if job.phase in FANOUT_PHASES:
        reason = f"fan-out stalled: no progress for {idle_s} s ({job.phase})"
        finished = jobs.mark_failed(job_id, reason, format_utc(now))  # type: ignore[attr-defined]
        return True, SweptJob(job_id, idle_s, 0, finished)
    error = f"stalled: no progress for {idle_s} s (longer than the queue's retry window)"
    sweeps.send({"job_id": job_id, "sweep": {"error": error}})
    return True, SweptJob(job_id, idle_s, 0, None)


@dataclass
class Walked:
    written: int  # failed results written
    position: str | None  # where to go on (None: done)


def sweep_walk(
    job_id: str,
    error: str,
    start: str | None,
    *,
    settings: Settings,
    jobs: FanOutRepository,
    files: Files,
    stores: StoreMaster,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Walked:
    """Walks the image list beside the job's results (both in submission order, a bounded page at a
    time) and writes a failed result for each image without one. Exactly once like any result: an image
    whose result comes meanwhile keeps it. Out of time: the position to go on from."""
    job = jobs.fanout_job(job_id)
    if job is None or job.status != "ongoing" or job.phase not in (None, ONGOING):
        return Walked(0, None)
    position = Position.from_json(start)
    ended = iter(jobs.iter_results(job_id, start=position.images, keys_only=True))
    next_ended = next(ended, None)
    stamp, written = utc_now(), 0
    batch: list[ImageResult] = []

    def write() -> int:
        outcome = jobs.record_results(batch)  # type: ignore[attr-defined]
        if outcome.refused:
            raise StorageRefused(f"{len(outcome.refused)} failed results of stalled job {job_id} not written")
        batch.clear()
        return len(outcome.written)

    for entry in entries(job, position, jobs=jobs, files=files, settings=settings, check=False):
        tasks, _ = tasks_of(entry, job, stores)
        for task in tasks:
            if task.index >= job.total:
                break
            while next_ended is not None and next_ended < task.index:  # type: ignore[operator]
                next_ended = next(ended, None)
            if next_ended != task.index:
                batch.append(ImageResult(task, "failed", stamp, error=error, error_class="transient"))
        position = entry.end
        if len(batch) >= SWEEP_WRITES:
            written += write()
            if clock() >= deadline:
                return Walked(written, position.to_json())
    if batch:
        written += write()
    return Walked(written, None)
