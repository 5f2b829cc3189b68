"""What the logic needs from storage and queues: small Protocols, so unit tests can use fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask, Job, JobState, ReportCounters, VisitImage


class JobRepository(Protocol):
    def create_job(
        self,
        job_id: str,
        total: int,
        ended_at_submit: Sequence[ImageResult],
        created_at: str,
        expires_at: int,
        *,
        callback_url: str | None = None,
        retry_of: str | None = None,
    ) -> None: ...

    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Each known job's status, read consistently (one read per job at most)."""

    def record_batch(self, results: Sequence[ImageResult]) -> list[FinishedJob]:
        """Record results and count them on their jobs exactly once; results already recorded are no-ops.

        Returns the jobs this call finished (a job is reported by exactly one call)."""

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None: ...

    def ongoing_jobs(self) -> list[tuple[str, str]]:
        """(job_id, last progress time) of every ongoing job."""

    def ended_indices(self, job_id: str) -> set[int]: ...

    def finish_stalled(self, job_id: str, reason: str, now: str) -> FinishedJob | None: ...

    def get_job(self, job_id: str) -> Job | None: ...

    def page_results(self, job_id: str, after_index: int | None, limit: int) -> tuple[list[ImageResult], bool]:
        """Up to `limit` ended images after `after_index`, in submission order, and whether more follow."""


class JobLifecycleRepository(Protocol):
    """Listing, cancelling and retrying jobs, and the completion notice outbox."""

    def get_job(self, job_id: str) -> Job | None: ...

    def page_jobs(self, status: str | None, after: dict | None, limit: int) -> tuple[list[Job], dict | None]:
        """Jobs newest first (of `status` if given), at most `limit`, and the next page's cursor (None
        when last). Raises ValueError on a cursor it did not hand out for this `status`."""

    def cancel_job(self, job_id: str, now: str) -> FinishedJob | None:
        """Ends an ongoing job as cancelled (owing its notice); None when it was not ongoing."""

    def failed_results(self, job_id: str) -> list[ImageResult]: ...

    def link_retry(self, job_id: str, retry_job_id: str) -> bool:
        """Records `retry_job_id` as the retry of an ended job; False if ongoing, unknown or already retried."""

    def unlink_retry(self, job_id: str, retry_job_id: str) -> None: ...

    def claim_notice(self, job_id: str) -> bool:
        """Takes the lease on an owed notice nobody else holds now; True when taken."""

    def notices_due(self, ended_before: str) -> list[str]:
        """Ids of ended jobs that still owe a notice (ended before `ended_before`)."""

    def notice_delivered(self, job_id: str, channel: str) -> None: ...

    def release_notice(self, job_id: str) -> None:
        """Gives the lease up (after a failed send) so another caller may retry now."""


class EventTopic(Protocol):
    def publish(self, message: str, subject: str) -> None:
        """Publish one message or raise."""


class CallbackSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST `body` (retrying transient failures) and return the final HTTP status; raises
        CallbackFailed when no response came (refused destination, timeouts, connection errors)."""


class CallbackFailed(Exception):
    pass


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


class JobSpecStore(Protocol):
    """Where a job's image list is kept from submit until the job can no longer stall."""

    def save(self, job_id: str, tasks: Sequence[ImageTask]) -> None: ...

    def load(self, job_id: str) -> list[ImageTask] | None: ...
