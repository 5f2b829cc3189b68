"""Job lifecycle: list jobs, cancel one, retry a finished job's failed images. No boto3 here."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import InvalidRequest, JobConflict
from retail_pulse.domain.models import FINAL_STATUSES, Job
from retail_pulse.domain.store_master import StoreMaster
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
    WorkQueue,
)
from retail_pulse.settings import Settings

DEFAULT_JOBS_PAGE = 20
MAX_JOBS_PAGE = 100
LISTED_STATUSES = ("ongoing", *FINAL_STATUSES)


# -- GET /api/jobs ----------------------------------------------------------------------------------
def list_jobs(
    status: str | None, limit: int | str | None, next_token: str | None, *, jobs: JobLifecycleRepository
) -> dict:
    """Jobs newest first, from a job GSI (never a scan); `next_token` is opaque and bound to `status`."""
    status = status or None
    if status is not None and status not in LISTED_STATUSES:
        raise InvalidRequest(f"status: must be one of {', '.join(LISTED_STATUSES)}")
    page_size = parse_limit(limit, default=DEFAULT_JOBS_PAGE, maximum=MAX_JOBS_PAGE)
    after = decode_token(next_token, status, dict, "listing") if next_token else None
    try:
        page, cursor = jobs.page_jobs(status, after, page_size)
    except ValueError:
        raise InvalidRequest("next_token: malformed or not from this listing") from None
    return {
        "jobs": [_listed(job) for job in page],
        "next_token": encode_token(status, cursor) if cursor else None,
    }


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
    return body


# -- POST /api/jobs/cancel ------------------------------------------------------------------------
def cancel_job(
    job_id: str | None, *, jobs: JobLifecycleRepository, notifier: Notifier
) -> tuple[dict, NoticeOutcome | None]:
    """Cancels an ongoing job (see DynamoJobRepository.cancel_job for the counts) and sends its
    notice; 409 when the job has already ended. Returns the job's status and the notice outcome."""
    job = require_job(job_id, jobs)
    if job.status != "ongoing" or jobs.cancel_job(job.job_id, utc_now()) is None:
        ended = jobs.get_job(job.job_id) or job
        raise JobConflict(f"jobid: job {job.job_id} already ended ({ended.status}); only ongoing jobs can be cancelled")
    outcome = deliver_notice(job.job_id, jobs=jobs, notifier=notifier)  # this call ended it: it holds the lease
    return job_status(job.job_id, jobs=jobs), outcome


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
    specs: JobSpecStore | None = None,
    on_job_ended: Callable[[str], None] | None = None,
    make_job_id: Callable[[], str] = new_job_id,
    fanout: WorkQueue | None = None,  # more than retry_inline_max_images failed: fanned out (logic/manifests)
) -> dict:
    """A new job of the failed images of an ended job (same store_id, visit_time and callback_url),
    created by submit's own path; the two jobs are linked both ways (`retry_of` / `retried_by`)."""
    job = require_job(job_id, jobs)
    if job.status == "ongoing":
        raise JobConflict(f"jobid: job {job.job_id} is still ongoing; retry it once it has ended")
    if job.retried_by:
        raise JobConflict(f"jobid: job {job.job_id} was already retried by job {job.retried_by}")
    if fanout is not None and job.failed > settings.retry_inline_max_images:
        from retail_pulse.logic.manifests import retry_by_fanout

        return retry_by_fanout(
            job, settings=settings, jobs=jobs, fanout=fanout, on_job_ended=on_job_ended, make_job_id=make_job_id
        )
    failed = jobs.failed_results(job.job_id)
    if not failed:
        raise JobConflict(f"jobid: job {job.job_id} has no failed images to retry")
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
        )
    except Exception as exc:
        if not getattr(exc, "extra", {}).get("job_id"):  # no job was created: undo the claim
            jobs.unlink_retry(job.job_id, retry_id)
        raise
    return {**accepted, "retry_of": job.job_id}
