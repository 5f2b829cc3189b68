"""The fan-out of jobs of any size (domain/fanout.py for the phases), and the stall sweeper's way
with them. No boto3 here.

- `fan_out`: the fan-out function's work. Pass 1 reads the whole image list and checks every row
  (nothing is enqueued while any row could be invalid); then total and remaining are set at once, and
  pass 2 enqueues one message per image. Both passes record their position on the job item (a
  checkpoint) at least every CHECKPOINT_IMAGES images or CHECKPOINT_S seconds, under a lease: a crash
  or a timeout redoes at most that much (SQS may then carry an image twice; its result is written
  once, see logic/process.py), and an invocation running out of time hands on to the next through
  the queue. The image list is a manifest (logic/manifests.py) or a retried job's failed results.
- the stall sweeper's way with such jobs: logic/fanout_sweep.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.fanout import (
    ACCEPTED,
    CHECKPOINT_IMAGES,
    CHECKPOINT_S,
    ENQUEUING,
    FANOUT_PHASES,
    MAX_MANIFEST_ERRORS,
    ONGOING,
    SOURCE_RETRY,
    FanOutJob,
)
from retail_pulse.domain.manifest import Entry, ManifestInvalid, Position, read
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask, Visit
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.validation import (
    InputLimits,
)
from retail_pulse.logic.jobs import RetryFilter
from retail_pulse.logic.submit import CALLBACKS_DISABLED, STORE_NOT_FOUND
from retail_pulse.ports import (
    FanOutRepository,
    Files,
    ImageStream,
    JobRepository,
    StorageRefused,
)
from retail_pulse.settings import Settings

LEASE_MARGIN_S = 20  # the fan-out's lease outlives its invocation by this much (the message's hold: more)
SWEEP_WRITES = 500  # failed results of a stalled job written per batch


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
            client_id=job.client_id,
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
    signed = settings.callbacks_enabled
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
