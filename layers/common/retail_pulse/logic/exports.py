"""Results exports: a job's results as one file in the data bucket, fetched by a presigned URL. No boto3.

- `start_export`: POST /api/results/export, an export item `running` and one message to the export
  function's queue; 202 at once.
- `export_status`: GET /api/results/export, the state, rows so far, and once ready a presigned GET URL.
- `run_export`: the export function: the job's results in submission order (16 partitions merged, a
  bounded page of each at a time: domain/fanout iter_results), written into an S3 multipart upload
  part by part. Memory stays flat whatever the job's size. A job still ongoing can be exported: the
  file holds the images ended so far and says so in its last line (domain/exports.trailer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from retail_pulse.domain import exports as files_format
from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.errors import EnqueueFailed, InvalidRequest, JobNotFound
from retail_pulse.domain.models import FINAL_STATUSES, ImageResult
from retail_pulse.domain.tenancy import Caller
from retail_pulse.domain.validation import echo
from retail_pulse.logic.status import _result_body, progress, require_job
from retail_pulse.logic.submit import new_job_id
from retail_pulse.ports import EnqueueError, ExportRepository, FanOutRepository, Files, JobRepository, WorkQueue
from retail_pulse.settings import Settings

EXPORT_PREFIX = "exports/"
STATUS_FILTERS = ("failed", "succeeded")
WRITE_ROWS = 1000  # rows formatted and handed to the file at once
PROGRESS_ROWS = 20_000  # the export item's `rows` moves this often while running


class ExportJobs(JobRepository, FanOutRepository, Protocol):
    """What an export reads: the job (status, progress) and its results in submission order."""


def start_export(
    job_id: str | None,
    fmt: str | None,
    status: str | None,
    *,
    jobs: JobRepository,
    exports: ExportRepository,
    queue: WorkQueue,
    caller: Caller,
    make_id: Callable[[], str] = new_job_id,
) -> dict:
    fmt = fmt or "jsonl"
    if fmt not in files_format.FORMATS:
        raise InvalidRequest(f"format: must be one of {', '.join(files_format.FORMATS)}")
    status = status or None
    if status is not None and status not in STATUS_FILTERS:
        raise InvalidRequest(f"status: must be one of {', '.join(STATUS_FILTERS)} (or omitted for every result)")
    job = require_job(job_id, jobs, caller)
    export_id = make_id()
    export = {
        "export_id": export_id,
        "job_id": job.job_id,
        "client_id": job.client_id,  # an export is its job's client's, as the job is
        "format": fmt,
        "status_filter": status,
        "state": "running",
        "rows": 0,
        "key": f"{EXPORT_PREFIX}{export_id}.{fmt}",
        "created_at": utc_now(),
    }
    exports.create_export(export)
    try:
        queue.send({"export_id": export_id})
    except EnqueueError as exc:
        exports.update_export(export_id, state="failed", error=f"could not start the export: {exc}")
        raise EnqueueFailed(f"could not start the export: {exc}") from None
    return {
        "export_id": export_id,
        "job_id": job.job_id,
        "state": "running",
        "status_url": f"/api/results/export?export_id={export_id}",
    }


def export_status(
    export_id: str | None, *, exports: ExportRepository, files: Files, settings: Settings, caller: Caller
) -> dict:
    if not export_id:
        raise InvalidRequest("export_id: required")
    export = exports.get_export(export_id) if len(export_id) <= 128 else None
    if export is None or not caller.sees(export.get("client_id")):  # another client's: as unknown
        raise InvalidRequest(f"export_id: no export {echo(export_id)}")
    body = {
        "export_id": export["export_id"],
        "job_id": export["job_id"],
        "format": export["format"],
        "state": export["state"],
        "rows": export.get("rows", 0),
        "created_at": export["created_at"],
    }
    if export.get("status_filter"):
        body["status"] = export["status_filter"]
    if export["state"] == "ready":
        suffix = f"-{export['status_filter']}" if export.get("status_filter") else ""
        filename = f"{export['job_id']}{suffix}.{export['format']}"
        body["url"] = files.presign_get(export["key"], settings.export_url_expiry_s, filename)
        body["url_expires_at"] = format_utc(datetime.now(UTC) + timedelta(seconds=settings.export_url_expiry_s))
        body["complete"] = bool(export.get("complete"))
        body["finished_at"] = export.get("finished_at")
    if export["state"] == "failed":
        body["error"] = export.get("error") or "the export failed"
    return body


@dataclass
class Exported:
    outcome: str  # ready | skipped (unknown, or not running any more)
    rows: int = 0
    complete: bool = True


def run_export(
    export_id: str,
    *,
    jobs: ExportJobs,
    exports: ExportRepository,
    files: Files,
    clock: Callable[[], float] = time.monotonic,
) -> Exported:
    """Writes the export's file from the job's results, row by row, then marks it ready. An error
    leaves it running (the message comes again; the caller marks it failed on the last delivery)."""
    export = exports.get_export(export_id)
    if export is None or export["state"] != "running":
        return Exported("skipped")
    fmt, wanted = export["format"], export.get("status_filter")
    job = jobs.get_job(export["job_id"])
    if job is None:  # expired: the message comes again, and fails the export at its last delivery
        raise JobNotFound(f"job {export['job_id']} of export {export_id} no longer exists")
    complete = job.status in FINAL_STATUSES  # ended before the walk: no result can come after it
    writer = files.writer(export["key"], files_format.CONTENT_TYPES[fmt])
    rows, pending, reported = 0, [], clock()
    try:
        writer.write(files_format.header(fmt))
        for result in jobs.iter_results(job.job_id, status=wanted):
            pending.append(_result_body(result))  # type: ignore[arg-type]
            if len(pending) >= WRITE_ROWS:
                writer.write(files_format.rows(fmt, pending))
                rows += len(pending)
                pending = []
                if rows % PROGRESS_ROWS == 0 or clock() - reported > 5:
                    exports.update_export(export_id, rows=rows)
                    reported = clock()
        if pending:
            writer.write(files_format.rows(fmt, pending))
            rows += len(pending)
        if not complete:
            after = jobs.get_job(job.job_id) or job
            summary = {
                "job_id": job.job_id,
                "job_status": after.status,
                "complete": False,
                "rows": rows,
                "progress": progress(after),
                "as_of": utc_now(),
            }
            writer.write(files_format.trailer(fmt, summary))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    exports.update_export(export_id, state="ready", rows=rows, complete=complete, finished_at=utc_now())
    return Exported("ready", rows, complete)


def fail_export(export_id: str, error: str, *, exports: ExportRepository) -> None:
    exports.update_export(export_id, state="failed", error=error[:500], finished_at=utc_now())


def result_body(result: ImageResult) -> dict:
    """A result as /api/results shows it (the export's rows and columns)."""
    return _result_body(result)
