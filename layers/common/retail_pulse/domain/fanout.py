"""A job whose images are enqueued after submit answered: its phases, and what the fan-out keeps on
the job item to resume where it stopped.

Phases of an ongoing job (`status` stays `ongoing` throughout, so every other rule holds as for any
job):
  accepted   the job exists; its image list (a manifest, or the failed images of the job a retry
             retries) is being checked, start to end, before anything is enqueued. total = 0.
  enqueuing  every row was valid: total and remaining are set (once, before the first image is
             enqueued, so results counted meanwhile find the job's counts complete); the images
             are being enqueued (`enqueued` of `total`).
  ongoing    every image is in the queue (as a job submitted inline is from the start).
A manifest with invalid rows ends `failed` from `accepted`, its errors naming their lines; nothing
of it was enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACCEPTED = "accepted"
ENQUEUING = "enqueuing"
ONGOING = "ongoing"
FANOUT_PHASES = (ACCEPTED, ENQUEUING)

SOURCE_MANIFEST = "manifest"  # an uploaded file (uploads/<client>/<id> in the data bucket)
SOURCE_RETRY = "retry"  # the failed results of the job `retry_of`, in submission order

MAX_MANIFEST_ERRORS = 100  # invalid rows a job keeps (each with its line); all of them are counted
CHECKPOINT_IMAGES = 20_000  # the fan-out records its position at least this often (images read)...
CHECKPOINT_S = 3.0  # ...and at least this often (seconds): a crash redoes at most this much
UPLOAD_PREFIX = "uploads/"
SNIFF_BYTES = 64 * 1024


def upload_key(client_id: str, upload_id: str) -> str:
    """Where a client's upload lands: under its client, so another client's submit of the same
    upload_id finds no file (as for an id never handed out)."""
    return f"{UPLOAD_PREFIX}{client_id}/{upload_id}"


@dataclass
class FanOutJob:
    """What the fan-out reads of a job item."""

    job_id: str
    status: str
    phase: str | None  # None: enqueued at submit (an inline job)
    source: str | None  # SOURCE_MANIFEST / SOURCE_RETRY
    created_at: str
    expires_at: int
    total: int = 0
    manifest_key: str | None = None
    manifest_version: str | None = None
    manifest_format: str | None = None
    position: str | None = None  # where the current pass goes on (domain/manifest.Position as JSON)
    validated: int = 0
    enqueued: int = 0
    errors: list[dict] = field(default_factory=list)  # at most MAX_MANIFEST_ERRORS {"line", "error"}
    error_count: int = 0
    callback_url: str | None = None
    retry_of: str | None = None
    retry_filter: dict | None = None  # a selective retry's filter (logic/jobs.RetryFilter.to_dict)
    client_id: str | None = None  # the client the job belongs to (domain/tenancy.py)
