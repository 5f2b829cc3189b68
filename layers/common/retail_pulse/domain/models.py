"""Plain data the layers pass between each other (no AWS, no event shapes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ImageStatus = Literal["succeeded", "failed"]
JobStatus = Literal["ongoing", "paused", "completed", "failed", "cancelled"]
FINAL_STATUSES = ("completed", "failed", "cancelled")
# A paused job is still live: its results are counted, it can end, be cancelled or resumed.
LIVE_STATUSES = ("ongoing", "paused")
ErrorClass = Literal["transient", "permanent", "store"]
ERROR_CLASSES = ("transient", "permanent", "store")


@dataclass(frozen=True)
class Visit:
    store_id: str
    image_urls: tuple[str, ...]
    visit_time: str  # as submitted; `visit_time_utc` is the normalised form
    visit_time_utc: str


@dataclass(frozen=True)
class FailureThreshold:
    """As Distributed Map's ToleratedFailurePercentage / ToleratedFailureCount: the job ends `failed`
    early once its failures exceed either (domain/rules.threshold_exceeded)."""

    percentage: float | None = None
    count: int | None = None

    @property
    def set(self) -> bool:
        return self.percentage is not None or self.count is not None


@dataclass(frozen=True)
class JobRequest:
    visits: tuple[Visit, ...]
    callback_url: str | None = None  # called once, signed, when the job ends
    threshold: FailureThreshold = FailureThreshold()
    labels: dict[str, str] = field(default_factory=dict)
    max_concurrency: int | None = None  # most of its images in flight at once (domain/quota.py)

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
    # What reports and visit queries need, fixed at submit (the message carries them):
    area: str | None = None  # the store's AreaCode; None for stores not in the Store Master
    visit_time_utc: str | None = None  # canonical UTC form of visit_time
    first_in_visit: bool = False  # the visit's lowest-index image: counts the visit once
    # A retry of an image that already ended failed in an earlier job (jobs/retry): reports counted it
    # there, so its result only moves it from failed to succeeded (domain/rules.report_contribution).
    retried: bool = False
    # The job's client (domain/tenancy.py): the queue's fair share is per client (adapters/sqs.py).
    client_id: str | None = None


@dataclass(frozen=True)
class ImageResult:
    task: ImageTask
    status: ImageStatus
    processed_at: str
    width: int | None = None
    height: int | None = None
    perimeter: int | None = None
    error: str | None = None
    duration_ms: int | None = None  # time spent processing this image (download, measure, compute)
    download_ms: int | None = None  # metrics only (never stored)
    image_bytes: int | None = None  # set when the download returned the image's bytes (cost: stored)
    error_class: str | None = None  # failed results: transient | permanent | store (ERROR_CLASSES)
    # Cost: this image's share of its process_image invocation (GB-ms) and of its request (1/1000s).
    gb_ms: int | None = None
    request_milli: int | None = None
    # Ended at submit (store not in the Store Master): the job item counted it when it was created.
    precounted: bool = False


@dataclass(frozen=True)
class FinishedJob:
    """A job as the one writer that finished it saw it (for the JobDuration metric)."""

    job_id: str
    status: JobStatus
    created_at: str
    finished_at: str

    @property
    def duration_ms(self) -> int:
        """Submit to finish; both times are our own UTC ISO 8601 stamps."""
        elapsed = datetime.fromisoformat(self.finished_at) - datetime.fromisoformat(self.created_at)
        return round(elapsed.total_seconds() * 1000)


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
    cancelled: int = 0  # images not ended when the job was cancelled (never downloaded or dropped)
    callback_url: str | None = None
    retry_of: str | None = None  # the job whose failed images this job retries
    retried_by: str | None = None  # the job that retries this job's failed images
    notices_owed: frozenset[str] = frozenset()  # completion notice channels not yet delivered
    # Ended early by the failure threshold: images not ended then (never downloaded, or dropped).
    skipped: int = 0
    threshold: FailureThreshold = FailureThreshold()
    labels: dict[str, str] = field(default_factory=dict)
    # Progress you can plan with (moved by the counting transaction, once per run; logic/progress.py).
    started_at: str | None = None  # when the first counted image began processing
    progressed_at: str | None = None  # when a run last moved the counters (or the job was resumed)
    gb_ms: int = 0  # measured processing (process_image invocations' GB-ms, shared by their images)
    request_milli: int = 0  # process_image invocations, in thousandths (each image's share)
    bytes_downloaded: int = 0
    rate_mark: tuple[str, int] | None = None  # (time, processed by processing) of the recent-rate window
    rate_mark_before: tuple[str, int] | None = None
    events_emitted: frozenset[str] = frozenset()  # progress events sent (at most once each)
    paused_at: str | None = None
    # A job fanned out after submit (domain/fanout.py): its phase while ongoing, images enqueued so
    # far, and the invalid rows of a refused manifest (at most 100, each naming its line; all counted).
    phase: str | None = None
    enqueued: int = 0
    manifest_errors: list[dict] = field(default_factory=list)
    manifest_error_count: int = 0
    client_id: str | None = None  # the API key id of the client that submitted it (domain/tenancy.py)
    max_concurrency: int | None = None  # most of its images in flight at once (domain/quota.py)

    @property
    def processed(self) -> int:
        return self.succeeded + self.failed + self.cancelled + self.skipped

    @property
    def remaining(self) -> int:
        return self.total - self.processed


@dataclass(frozen=True)
class JobState:
    """What process_image reads of a job before working on its images."""

    job_id: str
    status: JobStatus
    notices_owed: bool  # a completion notice is still to be delivered (see logic/notify.py)
    max_concurrency: int | None = None  # most of its images in flight at once (domain/quota.py)


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    area_code: str


@dataclass(frozen=True)
class VisitImage:
    """One ended image of a known store, as the visit indexes hold it."""

    store_id: str
    visit_time_utc: str
    status: ImageStatus
    perimeter: int | None


@dataclass
class ReportCounters:
    """Cumulative counters of an area or a store (the sum of its shards)."""

    images: int = 0
    failed: int = 0
    visits: int = 0
    duration_ms: int = 0  # processing time of every attempt (first runs and retries)
    attempts: int = 0  # processing attempts: images plus retried images
    last_visit: str | None = None  # latest UTC visit date (YYYY-MM-DD)

    def add(self, other: ReportCounters) -> None:
        self.images += other.images
        self.failed += other.failed
        self.visits += other.visits
        self.duration_ms += other.duration_ms
        self.attempts += other.attempts
        if other.last_visit and (self.last_visit is None or other.last_visit > self.last_visit):
            self.last_visit = other.last_visit


@dataclass(frozen=True)
class RecordOutcome:
    """What happened to a batch's results at their write (each result lands in exactly one list)."""

    written: list[ImageResult] = field(default_factory=list)
    already_recorded: list[ImageResult] = field(default_factory=list)  # an earlier delivery wrote it
    refused: list[ImageResult] = field(default_factory=list)  # our storage refused it past every retry


@dataclass(frozen=True)
class StreamedResult:
    """A result as the table's stream delivered it: `seq` orders it within its stream shard."""

    seq: str
    result: ImageResult


@dataclass
class Tally:
    """What a run of streamed results adds to the counters, in one atomic write (see logic/counting.py)."""

    jobs: dict[str, tuple[int, int]] = field(default_factory=dict)  # job -> (succeeded, failed)
    # Reports are per client: keyed by the job's client first ("": a job from before clients).
    areas: dict[tuple[str, str], ReportCounters] = field(default_factory=dict)  # (client, area)
    stores: dict[tuple[str, str, str], ReportCounters] = field(default_factory=dict)  # (client, area, store)
    # Per job, what else the run adds: cost, start time, and its results in counted order (the feed).
    runs: dict[str, JobRun] = field(default_factory=dict)

    @property
    def updates(self) -> int:
        # Each job takes two items of the write: its counters and its results-feed page.
        return 2 * len(self.jobs) + len(self.areas) + len(self.stores)


@dataclass
class JobRun:
    """What one counted run adds to one job beyond its counts."""

    indexes: list[int] = field(default_factory=list)  # its results, in stream order (the feed page)
    gb_ms: int = 0
    request_milli: int = 0
    bytes_downloaded: int = 0
    started_at: str | None = None  # the earliest start (processed_at less duration) of its results
    expires_at: int = 0  # the results' retention: the feed page expires with them


@dataclass(frozen=True)
class Applied:
    """How adding a tally ended: applied; or not, because it was counted before (the watermark is
    past it), or because some of its jobs are no longer ongoing (then nothing was written)."""

    applied: bool
    counted_before: bool = False
    ended_jobs: frozenset[str] = field(default_factory=frozenset)
