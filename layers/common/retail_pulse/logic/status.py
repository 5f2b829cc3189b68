from __future__ import annotations

from typing import Any

from retail_pulse.domain.errors import InvalidRequest, JobNotFound
from retail_pulse.domain.models import ImageResult, Job
from retail_pulse.domain.validation import echo
from retail_pulse.logic.paging import decode_token, encode_token, parse_limit
from retail_pulse.ports import JobReader, JobRepository

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def job_status(job_id: str | None, *, jobs: JobReader) -> dict:
    job = require_job(job_id, jobs)
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
    body.update(fanout_fields(job))
    return body


def fanout_fields(job: Job) -> dict:
    """The phase of an ongoing job (accepted, enqueuing with `enqueued`, ongoing: domain/fanout.py) and
    the invalid rows of a refused manifest."""
    body: dict = {}
    if job.status == "ongoing":
        body["phase"] = job.phase or "ongoing"
        if job.phase == "enqueuing":
            body["enqueued"] = job.enqueued
    if job.manifest_error_count:
        body["manifest_errors"] = job.manifest_errors
        body["manifest_error_count"] = job.manifest_error_count
    return body


def job_results(job_id: str | None, limit: int | str | None, next_token: str | None, *, jobs: JobRepository) -> dict:
    page_size = parse_limit(limit, default=DEFAULT_PAGE, maximum=MAX_PAGE)
    after = decode_token(next_token, job_id, int, "job") if next_token else None
    if after is not None and after < 0:
        raise InvalidRequest("next_token: malformed or not from this job")
    job = require_job(job_id, jobs)
    # A page of a running job may hold fewer than `limit` results: the next page goes on from there.
    results, next_after = jobs.page_results(job.job_id, after, page_size, job.total)
    token = encode_token(job.job_id, next_after) if next_after is not None else None
    return {"job_id": job.job_id, "results": [_result_body(r) for r in results], "next_token": token}


def progress(job: Job) -> dict:
    """A job's counts; `cancelled` appears once the job was cancelled (processed = total then)."""
    body = {"total": job.total, "processed": job.processed, "succeeded": job.succeeded, "failed": job.failed}
    if job.status == "cancelled":
        body["cancelled"] = job.cancelled
    return body


def require_job(job_id: str | None, jobs: JobReader) -> Job:
    if not job_id:
        raise InvalidRequest("jobid: required")
    job = jobs.get_job(job_id) if len(job_id) <= 128 else None
    if job is None:
        raise JobNotFound(f"jobid: no job {echo(job_id)}")
    return job


def _result_body(r: ImageResult) -> dict:
    return {
        "store_id": r.task.store_id,
        "image_url": r.task.image_url,
        "visit_time": r.task.visit_time,
        "status": r.status,
        "width": r.width,
        "height": r.height,
        "perimeter": r.perimeter,
        "error": r.error,
        "processed_at": r.processed_at,
    }
