"""What the logic needs from storage and queues: small Protocols, so unit tests can use fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .models import ImageResult, ImageTask, Job


class JobRepository(Protocol):
    def create_job(
        self, job_id: str, total: int, ended_at_submit: Sequence[ImageResult], created_at: str, expires_at: int
    ) -> None: ...

    def record_batch(self, results: Sequence[ImageResult]) -> None:
        """Record results and count them on their jobs exactly once; results already recorded are no-ops."""

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> None: ...

    def get_job(self, job_id: str) -> Job | None: ...

    def page_results(self, job_id: str, after_index: int | None, limit: int) -> tuple[list[ImageResult], bool]:
        """Up to `limit` ended images after `after_index`, in submission order, and whether more follow."""


class ImageQueue(Protocol):
    def send(self, tasks: Sequence[ImageTask]) -> None:
        """Enqueue every task or raise EnqueueError."""


class EnqueueError(Exception):
    pass
