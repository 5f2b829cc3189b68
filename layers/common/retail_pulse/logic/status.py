from __future__ import annotations

from typing import Any

from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.errors import InvalidRequest, JobNotFound
from retail_pulse.domain.models import LIVE_STATUSES, ImageResult, Job
from retail_pulse.domain.progress import plan
from retail_pulse.domain.rules import classify_error
from retail_pulse.domain.tenancy import Caller
from retail_pulse.domain.validation import echo
from retail_pulse.logic.paging import decode_token, encode_token, parse_limit
from retail_pulse.ports import JobReader, JobRepository

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def job_status(job_id: str | None, *, jobs: JobReader, caller: Caller) -> dict:
    job = require_job(job_id, jobs, caller)
    body: dict[str, Any] = {
        "status": job.status,
        "job_id": job.job_id,
        "progress": progress(job),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }
    for link in ("retry_of", "retried_by"):  # a retry job and the job it retries name each other
        if getattr(job, link):
            body[link] = getattr(job, link)
    if job.store_errors:
        body["error"] = job.store_errors
        if job.store_errors_truncated:
            body["error_truncated"] = True
    if job.reason:
        body["reason"] = job.reason
    body.update(job_controls(job))
    body.update(fanout_fields(job))
    return body


def fanout_fields(job: Job) -> dict:
    """The phase of a live job (accepted, enqueuing with `enqueued`, ongoing: domain/fanout.py; a
    paused job keeps showing the phase it was paused in) and the invalid rows of a refused manifest."""
    body: dict = {}
    if job.status in LIVE_STATUSES:
        body["phase"] = job.phase or "ongoing"
        if job.phase == "enqueuing":
            body["enqueued"] = job.enqueued
    if job.manifest_error_count:
        body["manifest_errors"] = job.manifest_errors
        body["manifest_error_count"] = job.manifest_error_count
    return body


def job_controls(job: Job, now: str | None = None) -> dict:
    """Labels, failure threshold and the plan (throughput, ETA, phases, cost) of a job."""
    body: dict = {"labels": dict(job.labels)}
    if job.threshold.set:
        body["failure_threshold"] = {
            "tolerated_failure_percentage": job.threshold.percentage,
            "tolerated_failure_count": job.threshold.count,
        }
    if job.max_concurrency:
        body["max_concurrency"] = job.max_concurrency
    body.update(plan(job, now or utc_now()))
    return body


def job_results(
    job_id: str | None,
    limit: int | str | None,
    next_token: str | None,
    *,
    jobs: JobRepository,
    caller: Caller,
    order: str | None = None,
    since: str | None = None,
) -> dict:
    if order == "processed":
        return results_feed(job_id, limit, since or next_token, jobs=jobs, caller=caller)
    if order not in (None, "", "index"):
        raise InvalidRequest("order: must be index or processed")
    if since:
        raise InvalidRequest("since: only with order=processed")
    page_size = parse_limit(limit, default=DEFAULT_PAGE, maximum=MAX_PAGE)
    after = decode_token(next_token, job_id, int, "job") if next_token else None
    if after is not None and after < 0:
        raise InvalidRequest("next_token: malformed or not from this job")
    job = require_job(job_id, jobs, caller)
    # A page of a running job may hold fewer than `limit` results: the next page goes on from there.
    results, next_after = jobs.page_results(job.job_id, after, page_size, job.total)
    token = encode_token(job.job_id, next_after) if next_after is not None else None
    return {"job_id": job.job_id, "results": [_result_body(r) for r in results], "next_token": token}


def results_feed(
    job_id: str | None, limit: int | str | None, since: str | None, *, jobs: JobRepository, caller: Caller
) -> dict:
    """Results in the order they were counted (ended), from a resumable cursor: every result of the
    job comes exactly once across pages, whatever runs concurrently (see ResultItems.feed_results).
    `next_since` is always set: follow it to get what ends next; `done` is true once the job has
    ended and the feed is exhausted."""
    page_size = parse_limit(limit, default=DEFAULT_PAGE, maximum=MAX_PAGE)
    position = decode_token(since, ["feed", job_id], int, "job's feed") if since else 0
    if position < 0:
        raise InvalidRequest("since: malformed or not from this job's feed")
    job = require_job(job_id, jobs, caller)
    ended = job.status not in LIVE_STATUSES  # read before the feed: an ended job's feed is complete
    found = jobs.feed_results(job.job_id, position, page_size)
    position += len(found)
    return {
        "job_id": job.job_id,
        "order": "processed",
        "results": [_result_body(r) for r in found],
        "next_since": encode_token(["feed", job.job_id], position),
        "next_token": None,
        "done": ended and len(found) < page_size,
    }


def progress(job: Job) -> dict:
    """A job's counts; `cancelled` appears once the job was cancelled (processed = total then)."""
    body = {"total": job.total, "processed": job.processed, "succeeded": job.succeeded, "failed": job.failed}
    if job.status == "cancelled":
        body["cancelled"] = job.cancelled
    if job.skipped:
        body["skipped"] = job.skipped  # ended early by its failure threshold: never processed
    return body


def require_job(job_id: str | None, jobs: JobReader, caller: Caller) -> Job:
    """The job, if it exists and is the caller's to see (an admin sees every client's). Another
    client's job answers exactly as an unknown id does: the same error, so ids cannot be probed.
    Every route that takes a `jobid` goes through here."""
    if not job_id:
        raise InvalidRequest("jobid: required")
    job = jobs.get_job(job_id) if len(job_id) <= 128 else None
    if job is None or not caller.sees(job.client_id):
        raise JobNotFound(f"jobid: no job {echo(job_id)}")
    return job


def _result_body(r: ImageResult) -> dict:
    return {
        "index": r.task.index,
        "store_id": r.task.store_id,
        "image_url": r.task.image_url,
        "visit_time": r.task.visit_time,
        "status": r.status,
        "width": r.width,
        "height": r.height,
        "perimeter": r.perimeter,
        "error": r.error,
        "error_class": classify_error(r.error, r.error_class) if r.status == "failed" else None,
        "processed_at": r.processed_at,
    }
