"""What the logic needs from storage and queues: small Protocols, so unit tests can use fakes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from retail_pulse.domain.fanout import FanOutJob
from retail_pulse.domain.models import (
    Applied,
    FailureThreshold,
    FinishedJob,
    ImageResult,
    ImageTask,
    Job,
    JobState,
    RecordOutcome,
    ReportCounters,
    Tally,
    VisitImage,
)
from retail_pulse.domain.quota import SlotState


class StorageRefused(Exception):
    """Our storage kept refusing a write (capacity, conflicts) until the caller's deadline: nothing of
    that write happened, and trying it later is safe."""


class JobReader(Protocol):
    """What a job's status needs: the job."""

    def get_job(self, job_id: str) -> Job | None: ...


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
        threshold: FailureThreshold | None = None,
        labels: dict[str, str] | None = None,
        client_id: str,  # the client (API key id) the job belongs to: domain/tenancy.py
        max_concurrency: int | None = None,  # most of its images in flight at once (domain/quota.py)
    ) -> None: ...

    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Each known job's status, read consistently (one read per job at most)."""

    def record_results(self, results: Sequence[ImageResult], deadline: float | None = None) -> RecordOutcome:
        """Write each result unless its image already has one (exactly once per image); the counters
        follow from the writes (see ResultCounter). Writes refused past `deadline` are `refused`."""

    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        """Ends the job if no image remains; returns it only to the one caller that ended it."""

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None: ...

    def fail_early(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None:
        """Ends a live job `failed` (its failure threshold exceeded): what remains becomes `skipped`."""

    def read_job(self, job_id: str) -> Job | None:
        """The job item alone, read consistently (no store errors)."""

    def claim_event(self, job_id: str, event: str) -> bool:
        """Records a progress event as sent; True only for the one caller that recorded it."""

    def move_rate_mark(self, job_id: str, previous_at: str | None, now: str, processed: int) -> None: ...

    def ongoing_jobs(self) -> list[tuple[str, str]]:
        """(job_id, last progress time) of every ongoing job."""

    def ended_indices(self, job_id: str) -> set[int]: ...

    def get_job(self, job_id: str) -> Job | None: ...

    def page_results(
        self, job_id: str, after_index: int | None, limit: int, total: int
    ) -> tuple[list[ImageResult], int | None]:
        """Up to `limit` ended images after `after_index` in submission order, and the index the next
        page goes on after (None when no image of the job follows)."""

    def feed_results(self, job_id: str, position: int, limit: int) -> list[ImageResult]:
        """Up to `limit` results of the job's feed (counted order) from `position` on (0 = the first)."""


class ResultCounter(Protocol):
    """The counters of jobs and reports, moved by runs of results as the table's stream delivers them."""

    max_updates: int  # counter updates one apply() takes at most

    def counted_through(self, stream_shard: str) -> str | None:
        """The (padded) sequence number up to which the shard's results are counted."""

    def apply(self, stream_shard: str, first_seq: str, last_seq: str, tally: Tally, deadline: float) -> Applied:
        """Adds `tally` (counters, and report items' last visit moved forward) and moves the shard's
        watermark to `last_seq`, atomically, unless the watermark is already at `first_seq` or past
        it, or a job of the tally is no longer ongoing."""

    def record_store_errors(self, results: Sequence[ImageResult], deadline: float) -> None: ...

    def delete_results(self, keys: Sequence[tuple[str, int]]) -> None:
        """Removes the results of these (job, index): images that ended after their job did."""


class JobLifecycleRepository(Protocol):
    """Listing, cancelling and retrying jobs, and the completion notice outbox."""

    def get_job(self, job_id: str) -> Job | None: ...

    def page_jobs(
        self,
        status: str | None,
        after: dict | None,
        limit: int,
        *,
        client_id: str | None,
        label: tuple[str, str] | None = None,
    ) -> tuple[list[Job], dict | None]:
        """Jobs newest first (of `status`, with `label`, if given; of client `client_id`, else every
        client's, never by a scan or a filter over other clients' jobs), at most `limit`, and the next
        page's cursor (None when last; a page may come short with a cursor). Raises ValueError on a
        cursor it did not hand out for this listing."""

    def cancel_job(self, job_id: str, now: str) -> FinishedJob | None:
        """Ends a live (ongoing or paused) job as cancelled (owing its notice); None when it was not live."""

    def pause_job(self, job_id: str, now: str) -> bool:
        """ongoing -> paused; False when it was not ongoing."""

    def resume_job(self, job_id: str, now: str) -> bool:
        """paused -> ongoing (progress clock restarted); False when it was not paused."""

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


class ParkingLot(Protocol):
    """Image messages of paused jobs, kept out of the queue until the job resumes (logic/pause.py)."""

    def park(self, job_id: str, tasks: Sequence[ImageTask]) -> str:
        """Keeps the tasks; returns the key of what was parked."""

    def parked(self, job_id: str) -> list[tuple[str, list[ImageTask]]]:
        """Everything parked for the job: (key, tasks)."""

    def unpark(self, job_id: str, keys: Sequence[str]) -> None: ...

    def lease_parked(
        self, job_id: str, max_images: int, lease_s: int
    ) -> tuple[list[tuple[str, list[ImageTask]]], bool]:
        """Parked batches leased to the caller until they hold `max_images`; whether any is parked."""


class SlotCounters(Protocol):
    """Images in flight per client or job (domain/quota.py; adapters/dynamodb/slots.py)."""

    def claim(self, owner: str, count: int, limit: int, epoch: int) -> bool: ...

    def release(self, owner: str, count: int, epoch: int) -> SlotState: ...

    def slot_state(self, owner: str) -> SlotState: ...

    def take_back(self, owner: str, epoch: int, count: int) -> bool: ...

    def mark_waiting(self, owner: str, job_id: str) -> None: ...

    def clear_waiting(self, owner: str, job_id: str, marker: str) -> None: ...


class EventTopic(Protocol):
    def publish(self, message: str, subject: str, client_id: str | None = None) -> None:
        """Publish one message (`client_id`: the job's client, for subscriptions to filter on) or raise."""


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
        client_id: str | None,
    ) -> tuple[list[VisitImage], str | None]:
        """Ended images of a store (else of the area) visited in [start, end] (UTC, None = unbounded),
        of client `client_id` (None: every client's), in visit-time order: at most `limit`, and the
        cursor of the next page (None when last).
        Raises ValueError on a cursor it did not hand out for this query."""

    def clients(self) -> list[str]:
        """Every client that has submitted a job."""

    def area_counters(self, area: str, clients: Sequence[str]) -> ReportCounters:
        """The area's counters summed over these clients ("": counted before reports were per client)."""

    def store_counters(self, area: str, store_id: str | None, clients: Sequence[str]) -> dict[str, ReportCounters]:
        """Store id -> counters summed over these clients, for the stores of `area` (or `store_id`)."""


class ImageQueue(Protocol):
    def send(self, tasks: Sequence[ImageTask]) -> None:
        """Enqueue every task or raise EnqueueError."""


class EnqueueError(Exception):
    pass


class JobSpecStore(Protocol):
    """Where a job's image list is kept from submit until the job can no longer stall."""

    def save(self, job_id: str, tasks: Sequence[ImageTask]) -> None: ...

    def load(self, job_id: str) -> list[ImageTask] | None: ...


# -- jobs of any size: manifests, the fan-out, exports (logic/manifests.py, fanout.py, exports.py) ---------
@dataclass(frozen=True)
class StoredFile:
    size: int  # bytes
    version: str | None  # the object version (the bucket is versioned): what a job reads stays what it accepted


class Files(Protocol):
    """The data bucket as the logic sees it: presigned URLs for clients, files read and written as streams."""

    def presign_put(self, key: str, size: int | None, expires_s: int) -> str:
        """A URL a client PUTs one file to (exactly `size` bytes when given) within `expires_s`."""

    def presign_get(self, key: str, expires_s: int, filename: str) -> str: ...

    def head(self, key: str) -> StoredFile | None: ...

    def read_start(self, key: str, version: str | None, size: int) -> bytes:
        """The file's first `size` bytes (or all of it when shorter)."""

    def stream(self, key: str, version: str | None, offset: int = 0) -> Iterator[bytes]:
        """The file's bytes from `offset` on, in chunks (never whole in memory)."""

    def writer(self, key: str, content_type: str) -> FileWriter: ...


class FileWriter(Protocol):
    """A file written as a stream (an S3 multipart upload): nothing is visible until `close`."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class WorkQueue(Protocol):
    """A queue of small JSON work messages (the fan-out's and the exports')."""

    def send(self, message: dict) -> None:
        """Enqueue it or raise EnqueueError."""


class ImageStream(Protocol):
    """Image messages sent as they come, many batches in flight: `flush` returns once everything put
    so far is in the queue (or raises EnqueueError)."""

    def put(self, task: ImageTask) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class FanOutRepository(Protocol):
    """The job item as the fan-out moves it through its phases (domain/fanout.py). Every update but
    the creation is conditional on the job being ongoing and, where named, on `owner` holding the
    fan-out's lease: False (or None) when it is not (cancelled, ended, or another invocation took over)."""

    def create_fanout_job(
        self,
        job_id: str,
        created_at: str,
        expires_at: int,
        *,
        source: str,
        manifest: dict | None = None,  # {"key", "version", "bytes", "format"}
        callback_url: str | None = None,
        retry_of: str | None = None,
        threshold: FailureThreshold | None = None,
        labels: dict[str, str] | None = None,
        retry_filter: dict | None = None,  # a selective retry's (logic/jobs.RetryFilter.to_dict)
        client_id: str,  # the client (API key id) the job belongs to: domain/tenancy.py
        max_concurrency: int | None = None,  # most of its images in flight at once (domain/quota.py)
    ) -> None: ...

    def unlink_retry(self, job_id: str, retry_job_id: str) -> None: ...

    def fanout_job(self, job_id: str) -> FanOutJob | None: ...

    def claim_fanout(self, job_id: str, owner: str, until: str) -> bool:
        """Takes the fan-out's lease (until the ISO time `until`) unless another holder's is live."""

    def release_fanout(self, job_id: str, owner: str) -> None: ...

    def checkpoint_fanout(
        self,
        job_id: str,
        owner: str,
        position: str,
        *,
        validated: int | None = None,
        enqueued: int | None = None,
        errors: list[dict] | None = None,
        error_count: int | None = None,
    ) -> bool:
        """Records the pass's position and what it counted so far (the images `validated` while
        accepted, with the invalid rows met; the images `enqueued` while enqueuing)."""

    def start_enqueuing(self, job_id: str, owner: str, total: int, callback_url: str | None) -> bool:
        """accepted -> enqueuing: total and remaining set, the position back to the start."""

    def finish_enqueuing(self, job_id: str, owner: str, enqueued: int, missing: int = 0) -> bool:
        """enqueuing -> ongoing; `missing` images of total the list no longer holds leave total and remaining."""

    def refuse_manifest(
        self, job_id: str, owner: str, *, errors: list[dict], error_count: int, reason: str, finished_at: str
    ) -> FinishedJob | None:
        """Ends the job failed (from accepted: nothing was enqueued), owing its notice."""

    def iter_results(
        self, job_id: str, *, start: int = 0, status: str | None = None, keys_only: bool = False
    ) -> Iterator[ImageResult | int]:
        """The job's results from image `start` on, in submission order (their indices with
        `keys_only`), read a bounded page at a time."""


class ExportRepository(Protocol):
    """Export items: {"export_id", "job_id", "format", "status", "state", "rows", "key", ...}."""

    def create_export(self, export: dict) -> None: ...

    def get_export(self, export_id: str) -> dict | None: ...

    def update_export(self, export_id: str, **fields: object) -> None: ...
