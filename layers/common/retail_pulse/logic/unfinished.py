"""Ending the images that processing could not end: dead-lettered messages and stalled jobs.

Both write results through the same exactly-once write as processing (JobRepository.record_results):
whichever path ends an image first wins, the others find its result and write nothing, and the
stream consumer counts each image once (logic/counting.py) and ends the job when nothing remains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask, RecordOutcome
from retail_pulse.logic.pause import replay_parked
from retail_pulse.ports import ImageQueue, JobRepository, JobSpecStore, ParkingLot

# The DLQ's own receive count says nothing of the main queue's, so the text names no number.
DEAD_LETTER_ERROR = "processing kept failing: the message was moved to the dead-letter queue"


def end_dead_letters(
    letters: Sequence[tuple[ImageTask, ImageResult | None]], *, jobs: JobRepository, deadline: float | None = None
) -> RecordOutcome:
    """Record each dead-lettered image: the result it carries when processing measured it but could not
    write it (it is recorded as measured: a good image is never failed for our own refusals), else a
    failed result. A no-op for an image that already ended."""
    now = utc_now()
    unique = {(task.job_id, task.index): (task, carried) for task, carried in letters}  # two copies: one write
    results = [
        carried or ImageResult(task, "failed", now, error=DEAD_LETTER_ERROR, error_class="transient")
        for task, carried in unique.values()
    ]
    return jobs.record_results(results, deadline)


@dataclass(frozen=True)
class SweptJob:
    job_id: str
    idle_s: int
    images_failed: int  # failed results written for its unfinished images (counted by the stream consumer)
    finished: FinishedJob | None  # set when the job had no image list and was ended here


def sweep_stalled_jobs(
    *,
    jobs: JobRepository,
    specs: JobSpecStore,
    now: datetime,
    stall_after_s: int,
    on_error: Callable[[str, Exception], None] | None = None,
    # Jobs fanned out after submit (logic/fanout_sweep.sweep_fanned_out): (handled, swept) of a stalled job.
    fanned_out: Callable[[str, int], tuple[bool, SweptJob | None]] | None = None,
) -> list[SweptJob]:
    """Fail the unfinished images of every ongoing job idle for longer than `stall_after_s`."""
    swept = []
    for job_id, progressed_at in jobs.ongoing_jobs():
        idle_s = int((now - datetime.fromisoformat(progressed_at.replace("Z", "+00:00"))).total_seconds())
        if idle_s <= stall_after_s:
            continue
        try:
            handled, job = fanned_out(job_id, idle_s) if fanned_out else (False, None)
            if not handled:
                job = _sweep_job(job_id, idle_s, jobs=jobs, specs=specs, now=now)
        except Exception as exc:  # one job that cannot be swept must not hold up the others
            if on_error is None:
                raise
            on_error(job_id, exc)
            continue
        if job is not None:
            swept.append(job)
    return swept


def _sweep_job(job_id: str, idle_s: int, *, jobs: JobRepository, specs: JobSpecStore, now: datetime) -> SweptJob | None:
    """None when every image already has a result (their counting is under way: nothing to do)."""
    error = f"stalled: no progress for {idle_s} s (longer than the queue's retry window)"
    stamp = format_utc(now)
    tasks = specs.load(job_id)
    if tasks is None:  # no image list: the job itself ends, its unfinished images counted failed
        return SweptJob(job_id, idle_s, 0, jobs.finish_if_done(job_id) or jobs.mark_failed(job_id, error, stamp))
    ended = jobs.ended_indices(job_id)
    results = [
        ImageResult(t, "failed", stamp, error=error, error_class="transient") for t in tasks if t.index not in ended
    ]
    if not results:
        finished = jobs.finish_if_done(job_id)
        return SweptJob(job_id, idle_s, 0, finished) if finished else None
    outcome = jobs.record_results(results)
    if outcome.refused:
        raise RuntimeError(f"{len(outcome.refused)} failed results of stalled job {job_id} not written")
    # Every image has a result now: the stream consumer counts them and ends the job.
    return SweptJob(job_id, idle_s, len(outcome.written), None)


def stalled_jobs_to_notify(
    *, jobs: JobRepository, now: datetime, notice_after_s: int, stall_after_s: int
) -> list[tuple[str, int]]:
    """Ongoing jobs with no progress for longer than `notice_after_s` (not yet swept): each claims
    its `stalled` event once (JobRepository.claim_event). Paused jobs are not `ongoing`: never stalled.
    Returns (job, idle seconds) of the events claimed here, for the caller to send."""
    claimed = []
    for job_id, progressed_at in jobs.ongoing_jobs():
        idle_s = int((now - datetime.fromisoformat(progressed_at.replace("Z", "+00:00"))).total_seconds())
        if notice_after_s < idle_s <= stall_after_s and jobs.claim_event(job_id, "stalled"):
            claimed.append((job_id, idle_s))
    return claimed


def replay_stranded(
    *, jobs: JobRepository, parking: ParkingLot, queue: ImageQueue, now: datetime, idle_after_s: int = 300
) -> dict[str, int]:
    """Messages still parked on an ongoing job idle for `idle_after_s` (a resume whose replay was cut
    short) go back to the queue. Returns the images replayed per job."""
    replayed = {}
    for job_id, progressed_at in jobs.ongoing_jobs():
        idle_s = (now - datetime.fromisoformat(progressed_at.replace("Z", "+00:00"))).total_seconds()
        if idle_s >= idle_after_s:
            sent = replay_parked(job_id, parking=parking, queue=queue)
            if sent:
                replayed[job_id] = sent
    return replayed
