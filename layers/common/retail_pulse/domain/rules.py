"""The rules of a job's life that every adapter and handler follows: how a job ends, how long a
notice sender holds its lease, what an image adds to the reports, and the bounds on errors kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from retail_pulse.domain.clock import format_utc
from retail_pulse.domain.models import ImageResult, JobStatus, ReportCounters

MAX_STORE_ERRORS = 1000  # per-store errors a job's status lists (then `error_truncated`)
ERROR_TEXT_LIMIT = 500  # characters of an image's error kept
NOTICE_LEASE_S = 120  # a notice sender holds a job's notice this long before another may take it over


def final_status(failed: int) -> JobStatus:
    """The status of a job whose images have all ended: failed if any image (or store) failed."""
    return "failed" if failed else "completed"


def notice_lease_until(now: datetime | None = None) -> str:
    return format_utc((now or datetime.now(UTC)) + timedelta(seconds=NOTICE_LEASE_S))


def report_contribution(result: ImageResult) -> ReportCounters | None:
    """What one ended image adds to its store's and area's report (None: not reported).

    Only images of stores in the Store Master are reported. An image counts once and a visit once,
    whatever the retries: a retried image (jobs/retry) was counted by the job it first failed in,
    so its retry only moves it from failed to succeeded when it succeeds now."""
    task = result.task
    if not task.area or result.precounted:
        return None
    ok = result.status == "succeeded"
    duration = result.duration_ms or 0
    day = task.visit_time_utc[:10] if task.visit_time_utc else None
    if task.retried:
        return ReportCounters(failed=-1 if ok else 0, duration_ms=duration, attempts=1, last_visit=day)
    return ReportCounters(
        images=1,
        failed=0 if ok else 1,
        visits=int(task.first_in_visit),
        duration_ms=duration,
        attempts=1,
        last_visit=day,
    )


# -- failure thresholds (submit's tolerated_failure_percentage / tolerated_failure_count) -----------
def threshold_exceeded(failed: int, total: int, percentage: float | None, count: int | None) -> str | None:
    """Why the job must end `failed` now, or None. As Distributed Map: the job fails once its failed
    images exceed `count`, or exceed `percentage` percent of its images (either, when both are set)."""
    if count is not None and failed > count:
        return f"failure threshold exceeded: {failed} images failed, tolerated_failure_count is {count}"
    if percentage is not None and total and failed * 100 > percentage * total:
        share = failed * 100 / total
        return (
            f"failure threshold exceeded: {failed} of {total} images failed ({share:.1f} %),"
            f" tolerated_failure_percentage is {percentage:g}"
        )
    return None


# -- error classes of failed images (selective retry) ---------------------------------------------
TRANSIENT_MARKERS = ("timed out", "connection", "cannot resolve", "dead-letter", "stalled", "HTTP 429", "HTTP 5")


def classify_error(error: str | None, error_class: str | None = None) -> str:
    """The class of a failed image: `transient` (timeouts, connection errors, 429/5xx after retries,
    dead-lettered, stalled), `permanent` (404 and other 4xx, not an image, too big, refused URL) or
    `store` (store_id not in the Store Master). Results written before classes existed are
    classified from their error text."""
    if error_class:
        return error_class
    text = error or ""
    if "not in Store Master" in text:
        return "store"
    if any(marker in text for marker in TRANSIENT_MARKERS):
        return "transient"
    return "permanent"


# -- progress events (job.progress at 25/50/75 %, job.first_failure, job.stalled) ------------------
PROGRESS_MARKS = (25, 50, 75)


def progress_events_due(processed: int, failed: int, total: int, emitted: frozenset[str]) -> list[str]:
    """Events a running job has earned and not yet sent: `progress:25` ... and `first_failure`."""
    due = [f"progress:{mark}" for mark in PROGRESS_MARKS if total and processed * 100 >= mark * total]
    if failed:
        due.append("first_failure")
    return [name for name in due if name not in emitted]
