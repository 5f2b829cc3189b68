from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import EnqueueFailed, InvalidRequest
from retail_pulse.domain.models import ImageResult, ImageTask
from retail_pulse.domain.rules import threshold_exceeded
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.validation import InputLimits, parse_job_request
from retail_pulse.ports import EnqueueError, ImageQueue, JobRepository, JobSpecStore
from retail_pulse.settings import Settings

STORE_NOT_FOUND = "store_id {store_id} not in Store Master"
CALLBACKS_DISABLED = (
    "callback_url: callbacks are disabled on this deployment (no CALLBACK_SIGNING_SECRET_ARN: they could "
    "not be signed); follow status_url or the job events topic instead"
)


def new_job_id() -> str:
    return secrets.token_hex(16)  # 128 random bits: unguessable


def submit_job(
    body: str | None,
    *,
    settings: Settings,
    jobs: JobRepository,
    queue: ImageQueue,
    stores: StoreMaster,
    client_id: str,  # the client (API key id) submitting it: domain/tenancy.py
    specs: JobSpecStore | None = None,  # where the image list is kept for the stall sweeper
    on_job_ended: Callable[[str], None] | None = None,  # a job that ends at submit owes its notice
    make_job_id: Callable[[], str] = new_job_id,
    retry_of: str | None = None,  # the job whose failed images this one retries (logic/jobs.py)
    labels: dict[str, str] | None = None,  # a retry's labels (its job's), when its body has none
) -> dict:
    """Validate a job, write it, enqueue one message per image. A retry job's images are retries:
    reports counted them (and their visits) in the job they first failed in."""
    request = parse_job_request(body, settings.max_images_per_job, InputLimits.from_settings(settings))
    # Accepting it would promise a call that never comes (unsigned callbacks are not sent). A retry
    # keeps its job's callback_url as it was accepted then: only a new submission is refused.
    if request.callback_url and retry_of is None and not settings.callbacks_enabled:
        raise InvalidRequest(CALLBACKS_DISABLED)
    job_id = make_job_id()
    created_at = utc_now()
    expires_at = int(time.time()) + settings.job_ttl_days * 86_400

    to_process: list[ImageTask] = []
    unknown_store: list[ImageResult] = []
    index = 0
    for visit in request.visits:
        store = stores.get(visit.store_id)
        known = store is not None
        for position, url in enumerate(visit.image_urls):
            task = ImageTask(
                job_id,
                index,
                visit.store_id,
                url,
                visit.visit_time,
                expires_at,
                # Reports and visit queries: only stores of the Store Master have an area.
                area=(store.area_code or None) if store else None,
                visit_time_utc=visit.visit_time_utc,
                first_in_visit=position == 0 and retry_of is None,
                retried=retry_of is not None,
                client_id=client_id,
            )
            index += 1
            if known:
                to_process.append(task)
            else:
                error = STORE_NOT_FOUND.format(store_id=visit.store_id)
                unknown_store.append(
                    ImageResult(task, "failed", created_at, error=error, error_class="store", precounted=True)
                )

    if specs is not None and to_process:
        specs.save(job_id, to_process)  # before the job exists: nothing can stall without its list
    controls: dict = {}  # job control fields, passed only when given
    if request.threshold.set:
        controls["threshold"] = request.threshold
    if request.labels or labels:
        controls["labels"] = request.labels or labels
    if request.max_concurrency:
        controls["max_concurrency"] = request.max_concurrency
    jobs.create_job(
        job_id,
        index,
        unknown_store,
        created_at,
        expires_at,
        callback_url=request.callback_url,
        retry_of=retry_of,
        client_id=client_id,
        **controls,
    )
    if not to_process and on_job_ended:
        on_job_ended(job_id)  # every store unknown: the job ended as it was created
    elif request.threshold.set:
        # Unknown stores may already exceed the threshold: the job fails before any download.
        failed = len(unknown_store)
        reason = threshold_exceeded(failed, index, request.threshold.percentage, request.threshold.count)
        if reason and jobs.fail_early(job_id, reason, utc_now()) is not None:
            if on_job_ended:
                on_job_ended(job_id)
            to_process = []  # skipped: nothing is enqueued
    try:
        queue.send(to_process)
    except EnqueueError as exc:
        reason = f"enqueueing images failed: {exc}"
        jobs.mark_failed(job_id, reason, utc_now())
        if on_job_ended:
            on_job_ended(job_id)
        raise EnqueueFailed(reason, job_id=job_id) from None
    return {"job_id": job_id, "total": index, "status_url": f"/api/status?jobid={job_id}"}
