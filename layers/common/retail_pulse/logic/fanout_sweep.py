"""The stall sweeper's way with fanned-out jobs (logic/fanout.py): `sweep_fanned_out` finishes a
stalled one, `sweep_walk` walks its image list (the manifest itself, streamed; no second copy is
written) to fail the images that never ended. No boto3 here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.fanout import (
    FANOUT_PHASES,
    ONGOING,
)
from retail_pulse.domain.manifest import Position
from retail_pulse.domain.models import ImageResult
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.logic.fanout import SWEEP_WRITES, entries, tasks_of
from retail_pulse.logic.unfinished import SweptJob
from retail_pulse.ports import (
    FanOutRepository,
    Files,
    StorageRefused,
    WorkQueue,
)
from retail_pulse.settings import Settings


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
