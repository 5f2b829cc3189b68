"""Job lifecycle: list jobs, cancel one, retry a finished job's failed images. No boto3 here."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import InvalidRequest, JobConflict
from retail_pulse.domain.models import ERROR_CLASSES, FINAL_STATUSES, LIVE_STATUSES, ImageResult, Job
from retail_pulse.domain.rules import classify_error
from retail_pulse.domain.store_master import StoreMaster
from retail_pulse.domain.tenancy import Caller
from retail_pulse.domain.validation import echo, parse_label
from retail_pulse.logic.notify import NoticeOutcome, Notifier, deliver_notice
from retail_pulse.logic.paging import decode_token, encode_token, parse_limit
from retail_pulse.logic.status import job_status, progress, require_job
from retail_pulse.logic.submit import new_job_id, submit_job
from retail_pulse.ports import (
    FanOutRepository,
    ImageQueue,
    JobLifecycleRepository,
    JobRepository,
    JobSpecStore,
    ParkingLot,
    WorkQueue,
)
from retail_pulse.settings import Settings

DEFAULT_JOBS_PAGE = 20
MAX_JOBS_PAGE = 100
LISTED_STATUSES = ("ongoing", "paused", *FINAL_STATUSES)
MAX_RETRY_STORES = 100
MAX_RETRY_INDEXES = 1000


# -- GET /api/jobs ----------------------------------------------------------------------------------
def list_jobs(
    status: str | None,
    limit: int | str | None,
    next_token: str | None,
    *,
    jobs: JobLifecycleRepository,
    caller: Caller,
    label: str | None = None,
) -> dict:
    """The caller's jobs newest first (an admin's: every client's), from its own partition of a job
    GSI or a label's index items (never a scan); `next_token` is opaque and bound to the caller,
    `status` and `label`."""
    status = status or None
    if status is not None and status not in LISTED_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(LISTED_STATUSES)}")
    page_size = parse_limit(limit, default=DEFAULT_JOBS_PAGE, maximum=MAX_JOBS_PAGE)
    wanted = _label_filter(label)
    if wanted is not None and caller.admin:
        raise InvalidRequest("label: lists one client's jobs; an admin key lists every client's without it")
    scope = [caller.scope, status] if wanted is None else [caller.scope, status, *wanted]
    after = decode_token(next_token, scope, dict, "listing") if next_token else None
    try:
        page, cursor = jobs.page_jobs(status, after, page_size, client_id=caller.client_filter, label=wanted)
    except ValueError:
        raise InvalidRequest("next_token: malformed or not from this listing") from None
    return {
        "jobs": [_listed(job) for job in page],
        "next_token": encode_token(scope, cursor) if cursor else None,
    }


def _label_filter(label: str | None) -> tuple[str, str] | None:
    """`key:value` (the value may hold further colons) -> (key, value)."""
    if not label:
        return None
    key, colon, value = label.partition(":")
    if not colon:
        raise InvalidRequest("label: must be key:value")
    return parse_label(key, value, "label")


def _listed(job: Job) -> dict:
    body = {
        "job_id": job.job_id,
        "status": job.status,
        "progress": progress(job),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
    if job.retry_of:
        body["retry_of"] = job.retry_of
    if job.labels:
        body["labels"] = dict(job.labels)
    return body


# -- POST /api/jobs/cancel ------------------------------------------------------------------------
def cancel_job(
    job_id: str | None,
    *,
    jobs: JobLifecycleRepository,
    notifier: Notifier,
    caller: Caller,
    parking: ParkingLot | None = None,
) -> tuple[dict, NoticeOutcome | None]:
    """Cancels an ongoing or paused job (see DynamoJobRepository.cancel_job for the counts) and sends
    its notice; 409 when the job has already ended. Returns the job's status and the notice outcome.
    A paused job's parked messages are forgotten (they are among the cancelled)."""
    job = require_job(job_id, jobs, caller)
    if job.status not in LIVE_STATUSES or jobs.cancel_job(job.job_id, utc_now()) is None:
        ended = jobs.get_job(job.job_id) or job
        raise JobConflict(
            f"jobid: job {job.job_id} already ended ({ended.status}); only ongoing or paused jobs can be cancelled"
        )
    outcome = deliver_notice(job.job_id, jobs=jobs, notifier=notifier)  # this call ended it: it holds the lease
    if parking is not None:
        for key, _ in parking.parked(job.job_id):
            parking.unpark(job.job_id, [key])
    return job_status(job.job_id, jobs=jobs, caller=caller), outcome


# -- POST /api/jobs/retry -------------------------------------------------------------------------
class RetryJobs(JobRepository, JobLifecycleRepository, FanOutRepository, Protocol):
    """What retry needs: the lifecycle reads and links, and submit's job creation."""


def retry_job(
    job_id: str | None,
    *,
    settings: Settings,
    jobs: RetryJobs,
    queue: ImageQueue,
    stores: StoreMaster,
    caller: Caller,
    specs: JobSpecStore | None = None,
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
    retry_filter: RetryFilter | None = None,
    fanout: WorkQueue | None = None,  # more than retry_inline_max_images failed: fanned out (logic/manifests)
) -> dict:
    """A new job of the failed images of an ended job (same store_id, visit_time, callback_url,
    labels and max_concurrency), created by submit's own path; the two jobs are linked both ways (`retry_of` /
    `retried_by`), and belong to the same client (an admin's retry too). `retry_filter` narrows the
    failed images retried (error class, stores, indexes)."""
    job = require_job(job_id, jobs, caller)
    client_id = job.client_id or caller.client_id  # a job from before clients: the retrying caller's
    if job.status in LIVE_STATUSES:
        raise JobConflict(f"jobid: job {job.job_id} is still {job.status}; retry it once it has ended")
    if job.retried_by:
        raise JobConflict(f"jobid: job {job.job_id} was already retried by job {job.retried_by}")
    if fanout is not None and job.failed > settings.retry_inline_max_images:
        # Too many failed images to read within the API call: the fan-out reads them (and applies the
        # filter); a filter that matches none of them ends the retry job failed and frees the link.
        from retail_pulse.logic.manifests import retry_by_fanout

        return retry_by_fanout(
            job,
            settings=settings,
            jobs=jobs,
            fanout=fanout,
            on_job_ended=on_job_ended,
            make_job_id=make_job_id,
            retry_filter=retry_filter if retry_filter is not None and retry_filter.active else None,
            client_id=client_id,
        )
    failed = jobs.failed_results(job.job_id)
    if not failed:
        raise JobConflict(f"jobid: job {job.job_id} has no failed images to retry")
    if retry_filter is not None and retry_filter.active:
        failed = [r for r in failed if retry_filter.matches(r)]
        if not failed:
            raise JobConflict(f"jobid: no failed image of job {job.job_id} matches the filter ({retry_filter})")
    visits: list[dict] = []
    for result in failed:  # in submission order: a visit's images stay together
        task = result.task
        last = visits[-1] if visits else None
        # Adjacent visits of one store and time merge; a merged visit stays within the URL limit.
        if (
            last is not None
            and (last["store_id"], last["visit_time"]) == (task.store_id, task.visit_time)
            and len(last["image_url"]) < settings.max_urls_per_visit
        ):
            last["image_url"].append(task.image_url)
        else:
            visits.append({"store_id": task.store_id, "image_url": [task.image_url], "visit_time": task.visit_time})
    body: dict = {"count": len(visits), "visits": visits}
    if job.callback_url:
        body["callback_url"] = job.callback_url
    if job.max_concurrency:
        body["max_concurrency"] = job.max_concurrency
    retry_id = make_job_id()
    # Claim first (conditional): two concurrent retries cannot both create a job.
    if not jobs.link_retry(job.job_id, retry_id):
        raise JobConflict(f"jobid: job {job.job_id} was already retried (or is ongoing)")
    try:
        accepted = submit_job(
            json.dumps(body),
            settings=settings,
            jobs=jobs,
            queue=queue,
            stores=stores,
            specs=specs,
            on_job_ended=on_job_ended,
            make_job_id=lambda: retry_id,
            retry_of=job.job_id,
            labels=job.labels,
            client_id=client_id,
        )
    except Exception as exc:
        if not getattr(exc, "extra", {}).get("job_id"):  # no job was created: undo the claim
            jobs.unlink_retry(job.job_id, retry_id)
        raise
    return {**accepted, "retry_of": job.job_id}


@dataclass(frozen=True)
class RetryFilter:
    """Which failed images a retry takes: all of one error class, of some stores, or some indexes
    (each given narrows the choice; none given: every failed image)."""

    error_class: str | None = None
    store_ids: frozenset[str] = frozenset()
    indexes: frozenset[int] = frozenset()

    @property
    def active(self) -> bool:
        return bool(self.error_class or self.store_ids or self.indexes)

    def matches(self, result: ImageResult) -> bool:
        if self.error_class and classify_error(result.error, result.error_class) != self.error_class:
            return False
        if self.store_ids and result.task.store_id not in self.store_ids:
            return False
        return not self.indexes or result.task.index in self.indexes

    def to_dict(self) -> dict:
        """As kept on a fanned-out retry job's item (its fan-out applies it: logic/fanout)."""
        return {
            "error_class": self.error_class,
            "store_ids": sorted(self.store_ids),
            "indexes": sorted(self.indexes),
        }

    @classmethod
    def from_dict(cls, data: dict) -> RetryFilter:
        return cls(
            data.get("error_class") or None,
            frozenset(str(s) for s in data.get("store_ids") or ()),
            frozenset(int(i) for i in data.get("indexes") or ()),
        )

    def __str__(self) -> str:
        parts = [f"error_class={self.error_class}"] if self.error_class else []
        if self.store_ids:
            parts.append(f"{len(self.store_ids)} store id(s)")
        if self.indexes:
            parts.append(f"{len(self.indexes)} index(es)")
        return ", ".join(parts)


def parse_retry_filter(error_class: str | None, store_id: str | None, index: str | None) -> RetryFilter:
    """`error_class` one of transient/permanent/store; `store_id` and `index` comma-separated lists."""
    if error_class and error_class not in ERROR_CLASSES:
        raise InvalidRequest(f"error_class: must be one of {', '.join(ERROR_CLASSES)}")
    stores = [s.strip() for s in (store_id or "").split(",") if s.strip()]
    if len(stores) > MAX_RETRY_STORES:
        raise InvalidRequest(f"store_id: at most {MAX_RETRY_STORES} store ids")
    indexes: list[int] = []
    for raw in (part.strip() for part in (index or "").split(",")):
        if not raw:
            continue
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise InvalidRequest(f"index: {echo(raw)} is not an image index (an integer >= 0)")
        indexes.append(int(raw))
    if len(indexes) > MAX_RETRY_INDEXES:
        raise InvalidRequest(f"index: at most {MAX_RETRY_INDEXES} indexes")
    return RetryFilter(error_class or None, frozenset(stores), frozenset(indexes))
