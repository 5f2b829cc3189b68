"""Ending the images that processing could not end: dead-lettered messages and stalled jobs.

Both go through the same exactly-once write as processing (JobRepository.record_batch): whichever
path ends an image first wins, the others become no-ops, and a finished job never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask
from retail_pulse.ports import JobRepository, JobSpecStore

# The DLQ's own receive count says nothing of the main queue's, so the text names no number.
DEAD_LETTER_ERROR = "processing kept failing: the message was moved to the dead-letter queue"


def end_dead_letters(tasks: Sequence[ImageTask], *, jobs: JobRepository) -> list[FinishedJob]:
    """Record each task from the dead-letter queue as a failed image (a no-op if it already ended)."""
    now = utc_now()
    unique = {(t.job_id, t.index): t for t in tasks}.values()  # two copies of one image: one write
    return jobs.record_batch([ImageResult(task, "failed", now, error=DEAD_LETTER_ERROR) for task in unique])


@dataclass(frozen=True)
class SweptJob:
    job_id: str
    idle_s: int
    images_failed: int
    finished: FinishedJob | None


def sweep_stalled_jobs(
    *,
    jobs: JobRepository,
    specs: JobSpecStore,
    now: datetime,
    stall_after_s: int,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[SweptJob]:
    """Finish every ongoing job idle for longer than `stall_after_s`, failing its unfinished images."""
    swept = []
    for job_id, progressed_at in jobs.ongoing_jobs():
        idle_s = int((now - datetime.fromisoformat(progressed_at.replace("Z", "+00:00"))).total_seconds())
        if idle_s <= stall_after_s:
            continue
        try:
            swept.append(_sweep_job(job_id, idle_s, jobs=jobs, specs=specs, now=now))
        except Exception as exc:  # one job that cannot be swept must not hold up the others
            if on_error is None:
                raise
            on_error(job_id, exc)
    return swept


def _sweep_job(job_id: str, idle_s: int, *, jobs: JobRepository, specs: JobSpecStore, now: datetime) -> SweptJob:
    error = f"stalled: no progress for {idle_s} s (longer than the queue's retry window)"
    tasks = specs.load(job_id) or []
    ended = jobs.ended_indices(job_id)
    stamp = format_utc(now)
    results = [ImageResult(t, "failed", stamp, error=error) for t in tasks if t.index not in ended]
    finished = jobs.record_batch(results) if results else []
    # Nothing left to fail per image (or no image list): finish the job itself.
    finished_job = finished[0] if finished else jobs.finish_stalled(job_id, error, stamp)
    return SweptJob(job_id, idle_s, len(results), finished_job)
