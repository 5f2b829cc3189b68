from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.measuring import ImageError, measure_image, perimeter
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask
from retail_pulse.ports import JobRepository
from retail_pulse.settings import Settings

Fetch = Callable[[str, float], bytes]


@dataclass(frozen=True)
class ProcessedBatch:
    results: list[ImageResult]
    finished_jobs: list[FinishedJob]  # jobs this batch's write finished (each reported by one batch only)
    skipped: int = 0  # images of jobs that had ended (cancelled, finished) or are unknown: not touched
    notices_owed: list[str] = field(default_factory=list)  # ended jobs still owing their notice


def process_images(
    tasks: Sequence[ImageTask],
    *,
    settings: Settings,
    jobs: JobRepository,
    fetch: Fetch,
    pool: Executor,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> ProcessedBatch:
    """Measure a batch's images concurrently, then record them all in one write.

    Raises when the write fails (the records are then redelivered by SQS); a bad image
    is not an error here: it ends as a failed result.
    """
    unique = list({(t.job_id, t.index): t for t in tasks}.values())  # a duplicate in one batch counts once
    # One consistent read per job of the batch: images of a cancelled (or ended, or unknown) job are
    # skipped with no download and no compute. A job cancelled after this read loses the batch's
    # images at the write (its counter update requires `ongoing`), where they are already counted.
    states = jobs.job_states(sorted({t.job_id for t in unique})) if unique else {}
    live = [t for t in unique if t.job_id in states and states[t.job_id].status == "ongoing"]
    futures = [pool.submit(_process_one, t, settings, fetch, deadline, sleep) for t in live]
    results = [f.result() for f in futures]
    finished = jobs.record_batch(results) if results else []
    owed = [s.job_id for s in states.values() if s.status != "ongoing" and s.notices_owed]
    return ProcessedBatch(results, finished or [], skipped=len(unique) - len(live), notices_owed=owed)


def _process_one(task: ImageTask, settings: Settings, fetch: Fetch, deadline: float, sleep) -> ImageResult:
    started = time.monotonic()

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    download_ms = image_bytes = None
    try:
        data = fetch(task.image_url, deadline)
        download_ms, image_bytes = elapsed_ms(), len(data)
        width, height = measure_image(data)
    except ImageError as exc:
        return ImageResult(
            task,
            "failed",
            utc_now(),
            error=str(exc),
            duration_ms=elapsed_ms(),
            download_ms=download_ms,
            image_bytes=image_bytes,
        )
    # Stands in for the GPU work the product will do per image; must stay in.
    sleep(random.uniform(settings.processing_delay_min_s, settings.processing_delay_max_s))
    return ImageResult(
        task,
        "succeeded",
        utc_now(),
        width=width,
        height=height,
        perimeter=perimeter(width, height),
        duration_ms=elapsed_ms(),
        download_ms=download_ms,
        image_bytes=image_bytes,
    )
