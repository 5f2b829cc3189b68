"""What the logic needs from storage and queues: small Protocols, so unit tests can use fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .models import FinishedJob, ImageResult, ImageTask, Job, ReportCounters, VisitImage


class JobRepository(Protocol):
    def create_job(
        self, job_id: str, total: int, ended_at_submit: Sequence[ImageResult], created_at: str, expires_at: int
    ) -> None: ...

    def record_batch(self, results: Sequence[ImageResult]) -> list[FinishedJob]:
        """Record results and count them on their jobs exactly once; results already recorded are no-ops.

        Returns the jobs this call finished (a job is reported by exactly one call)."""

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> None: ...

    def get_job(self, job_id: str) -> Job | None: ...

    def page_results(self, job_id: str, after_index: int | None, limit: int) -> tuple[list[ImageResult], bool]:
        """Up to `limit` ended images after `after_index`, in submission order, and whether more follow."""


class ReportRepository(Protocol):
    def page_visits(
        self,
        *,
        area: str,
        store_id: str | None,
        start: str | None,
        end: str | None,
        after: str | None,
        limit: int,
    ) -> tuple[list[VisitImage], str | None]:
        """Ended images of a store (else of the area) visited in [start, end] (UTC, None = unbounded),
        in visit-time order: at most `limit`, and the cursor of the next page (None when last).
        Raises ValueError on a cursor it did not hand out for this query."""

    def area_counters(self, area: str) -> ReportCounters: ...

    def store_counters(self, area: str, store_id: str | None = None) -> dict[str, ReportCounters]: ...


class ImageQueue(Protocol):
    def send(self, tasks: Sequence[ImageTask]) -> None:
        """Enqueue every task or raise EnqueueError."""


class EnqueueError(Exception):
    pass
