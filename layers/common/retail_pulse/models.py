"""Plain data the layers pass between each other (no AWS, no event shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ImageStatus = Literal["succeeded", "failed"]
JobStatus = Literal["ongoing", "completed", "failed"]


@dataclass(frozen=True)
class Visit:
    store_id: str
    image_urls: tuple[str, ...]
    visit_time: str  # as submitted; `visit_time_utc` is the normalised form
    visit_time_utc: str


@dataclass(frozen=True)
class JobRequest:
    visits: tuple[Visit, ...]

    @property
    def image_count(self) -> int:
        return sum(len(v.image_urls) for v in self.visits)


@dataclass(frozen=True)
class ImageTask:
    """One image of a job; `index` is its position in submission order."""

    job_id: str
    index: int
    store_id: str
    image_url: str
    visit_time: str
    expires_at: int  # epoch seconds: the job's retention (DynamoDB TTL)


@dataclass(frozen=True)
class ImageResult:
    task: ImageTask
    status: ImageStatus
    processed_at: str
    width: int | None = None
    height: int | None = None
    perimeter: int | None = None
    error: str | None = None


@dataclass
class Job:
    job_id: str
    status: JobStatus
    total: int
    succeeded: int
    failed: int
    created_at: str
    finished_at: str | None = None
    reason: str | None = None
    store_errors: list[dict] = field(default_factory=list)
    store_errors_truncated: bool = False

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    area_code: str
