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
