"""process_image's rules: measure a batch's images concurrently, write each result once, and say
what happens to the images whose result our storage refused."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.measuring import ImageError, measure_image, perimeter
from retail_pulse.domain.models import ImageResult, ImageTask, RecordOutcome
from retail_pulse.domain.quota import Admission
from retail_pulse.domain.retry import redelivery_delay_s
from retail_pulse.logic.admission import Quotas, Released
from retail_pulse.ports import JobRepository, StorageRefused
from retail_pulse.settings import Settings

Fetch = Callable[[str, float], bytes]


@dataclass(frozen=True)
class ProcessedBatch:
    results: list[ImageResult]  # every image measured (or failed) by this batch
    recorded: RecordOutcome  # what their writes did
    skipped: int = 0  # images of jobs that had ended (cancelled, finished) or are unknown: not touched
    notices_owed: list[str] = field(default_factory=list)  # ended jobs still owing their notice
    parked: list[ImageTask] = field(default_factory=list)  # images of paused jobs: to park (logic/pause.py)
    # Images over their client's quota or their job's max_concurrency: to park (logic/admission.py).
    admission: Admission = field(default_factory=Admission)
    released: Released = field(default_factory=Released)  # its slots given back, waiting images replayed


def process_images(
    tasks: Sequence[ImageTask],
    *,
    settings: Settings,
    jobs: JobRepository,
    fetch: Fetch,
    pool: Executor,
    deadline: float,
    write_deadline: float,
    sleep: Callable[[float], None] = time.sleep,
    memory_mb: int = 512,
    quotas: Quotas | None = None,
) -> ProcessedBatch:
    """Measure a batch's images concurrently (downloads end by `deadline`), then write each result
    once (writes end by `write_deadline`). A bad image is not an error here: it ends as a failed
    result. A result our storage kept refusing comes back in `recorded.refused`."""
    unique = list({(t.job_id, t.index): t for t in tasks}.values())  # a duplicate in one batch counts once
    # One consistent read per job of the batch: images of a cancelled (or ended, or unknown) job are
    # skipped with no download and no compute. Results of a job that ends after this read are
    # dropped by the stream consumer (logic/counting.py), which never counts them.
    # Images of a paused job are parked, not downloaded (the caller parks them: logic/pause.py).
    try:
        states = jobs.job_states(sorted({t.job_id for t in unique})) if unique else {}
    except StorageRefused:
        # The read only spares work: without it every image is processed, and the stream consumer
        # drops the results of jobs that had ended. A throttled read must not send the batch back.
        # (A paused job's images are then measured too: their results count, as those of batches
        # in flight when it paused do.)
        states = None
    if states is None:
        live, parked = unique, []
    else:
        live = [t for t in unique if t.job_id in states and states[t.job_id].status == "ongoing"]
        parked = [t for t in unique if t.job_id in states and states[t.job_id].status == "paused"]
    # Slots claimed for what is measured now; the rest waits parked (the caller parks admission.capped).
    admission = quotas.admit(live, states or {}) if quotas else Admission(admitted=live)
    released = Released()
    try:
        started = time.monotonic()
        futures = [pool.submit(_process_one, t, settings, fetch, deadline, sleep) for t in admission.admitted]
        results = with_cost_shares([f.result() for f in futures], time.monotonic() - started, memory_mb)
        recorded = jobs.record_results(results, write_deadline)
    finally:
        if quotas and admission.claims:
            released = quotas.release(admission.claims)
    owed = [s.job_id for s in (states or {}).values() if s.status not in ("ongoing", "paused") and s.notices_owed]
    skipped = len(unique) - len(live) - len(parked)
    return ProcessedBatch(
        results, recorded, skipped=skipped, notices_owed=owed, parked=parked, admission=admission, released=released
    )


def with_cost_shares(results: list[ImageResult], elapsed_s: float, memory_mb: int) -> list[ImageResult]:
    """Each result with its share of this invocation's cost: the batch's wall time at the function's
    memory size (GB-ms) and its request, split evenly over the images measured together."""
    if not results:
        return results
    gb_ms = elapsed_s * 1000 * memory_mb / 1024
    share, request = round(gb_ms / len(results)), round(1000 / len(results))
    return [replace(r, gb_ms=share, request_milli=request) for r in results]


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
            error_class=exc.error_class,
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


@dataclass(frozen=True)
class Unrecorded:
    """What becomes of images whose result could not be written (the writes were refused)."""

    retry_soon: list[tuple[ImageResult, int]]  # (result, seconds until the message is delivered again)
    hand_to_dead_letters: list[ImageResult]  # last delivery: the result travels to the DLQ consumer


def settle_unrecorded(
    refused: Sequence[ImageResult], receive_counts: dict[tuple[str, int], int], max_receives: int
) -> Unrecorded:
    """An image measured fine is never recorded failed because our own writes were refused: its
    message comes back in seconds (not after the visibility timeout); on its last delivery before the
    dead-letter queue, it is handed there with its result, which the DLQ consumer records as measured."""
    soon, last = [], []
    for result in refused:
        count = receive_counts.get((result.task.job_id, result.task.index), 1)
        if count >= max_receives:
            last.append(result)
        else:
            soon.append((result, redelivery_delay_s(count)))
    return Unrecorded(soon, last)
