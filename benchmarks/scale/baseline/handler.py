"""FROZEN COPY of f399a74's process_image and dead-letter flows, for the scale model's comparison only.

process_image then: read the batch's jobs (one consistent BatchGetItem), measure the live images
concurrently (the same measuring code as today: logic.process._process_one), record them all in one
`record_batch`; if that raises (a throttle, a lasting conflict), every record of the batch goes back
to SQS and waits out the queue's visibility timeout. The dead-letter consumer recorded each
dead-lettered image as failed with the same `record_batch`. Powertools' logging, metrics and the
completion notices are left out (they write nothing per image).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.messages import task_from_message
from retail_pulse.domain.models import ImageResult, ImageTask
from retail_pulse.logic.process import _process_one
from retail_pulse.settings import Settings

from .repository import BaselineJobRepository

WRITE_RESERVE_S = 5.0  # seconds of the invocation kept for the batch's write (f399a74)
DEAD_LETTER_ERROR = "processing kept failing: the message was moved to the dead-letter queue"


def process_batch(
    event: dict,
    context,
    *,
    repo: BaselineJobRepository,
    settings: Settings,
    fetch: Callable[[str, float], bytes],
    pool: Executor,
    time_scale: float,
) -> dict:
    tasks: dict[str, ImageTask] = {}
    for record in event.get("Records", []):
        with contextlib.suppress(ValueError):  # malformed: left out, as f399a74 did
            tasks[record["messageId"]] = task_from_message(record["body"])
    remaining_s = context.get_remaining_time_in_millis() / 1000
    deadline = time.monotonic() + remaining_s - WRITE_RESERVE_S * time_scale
    unique = list({(t.job_id, t.index): t for t in tasks.values()}.values())
    try:
        states = repo.job_states(sorted({t.job_id for t in unique})) if unique else {}
        live = [t for t in unique if t.job_id in states and states[t.job_id].status == "ongoing"]
        futures = [pool.submit(_process_one, t, settings, fetch, deadline, time.sleep) for t in live]
        results = [f.result() for f in futures]
        if results:
            repo.record_batch(results)
    except Exception:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event.get("Records", [])]}
    malformed = [r["messageId"] for r in event.get("Records", []) if r["messageId"] not in tasks]
    return {"batchItemFailures": [{"itemIdentifier": m} for m in malformed]}


def dead_letter_batch(event: dict, context, *, repo: BaselineJobRepository) -> dict:
    tasks = {}
    for record in event.get("Records", []):
        try:
            tasks[record["messageId"]] = task_from_message(record["body"])
        except ValueError:
            continue
    now = utc_now()
    unique = {(t.job_id, t.index): t for t in tasks.values()}.values()
    try:
        repo.record_batch([ImageResult(task, "failed", now, error=DEAD_LETTER_ERROR) for task in unique])
    except Exception:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in tasks]}
    return {"batchItemFailures": []}
