"""Images in flight: a client's quota (the `ClientImageQuota` parameter) and a job's own
`max_concurrency` cap how many of their images process_image measures at once.

A batch claims slots before it downloads anything: for each job with a `max_concurrency`, on the
job's counter; then for each client, on the client's. What a claim cannot get is *capped*: parked
(as a paused job's images are, never returned to the queue, where every receive counts toward the
dead-letter queue) and marked waiting on the counter that refused it. Every release of slots reads
the counter back and replays as many of its waiting images as there is room for, so a capped
client's backlog flows back at the pace its own batches end.

A claim is counted under the minute it was made (`epoch`). A batch whose invocation died never
releases: its minute's claims are taken back once the minute is older than STALE_CLAIM_S (longer
than process_image's timeout), so a lost release blocks nothing for long.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from retail_pulse.domain.models import ImageTask

STALE_CLAIM_S = 180  # process_image's timeout is 60 s: a claim this old belongs to a dead invocation
EPOCH_S = 60  # claims are counted per minute
MAX_REPLAY = 100  # images one release sends back at most (the next release sends more)


def epoch_of(now_s: float) -> int:
    return int(now_s // EPOCH_S)


def stale_epochs(epochs: Iterable[int], now_s: float) -> list[int]:
    """The minutes whose unreleased claims are taken back (their invocations are over)."""
    return [e for e in epochs if (e + 1) * EPOCH_S <= now_s - STALE_CLAIM_S]


def client_owner(client_id: str) -> str:
    return f"client:{client_id}"


def job_owner(job_id: str) -> str:
    return f"job:{job_id}"


@dataclass(frozen=True)
class SlotState:
    """An owner's counter as read or as a release left it."""

    in_flight: int = 0
    epochs: dict[int, int] = field(default_factory=dict)  # minute -> images claimed in it, unreleased
    waiting: dict[str, str] = field(default_factory=dict)  # job id -> its marker (images parked)


@dataclass(frozen=True)
class Claim:
    owner: str
    count: int
    epoch: int
    limit: int


@dataclass
class Admission:
    """How a batch's live images split: those it measures now (their slots claimed) and those capped
    (owner that refused them -> its images, to park)."""

    admitted: list[ImageTask] = field(default_factory=list)
    capped: dict[str, list[ImageTask]] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)  # each owner's limit
    unclaimed: int = 0  # admitted without a claim: the counter kept refusing (throttled)

    def cap(self, owner: str, limit: int, tasks: Iterable[ImageTask]) -> None:
        capped = list(tasks)
        if capped:
            self.capped.setdefault(owner, []).extend(capped)
            self.limits[owner] = limit

    @property
    def capped_images(self) -> int:
        return sum(len(t) for t in self.capped.values())


def room_for(limit: int, in_flight: int) -> int:
    """Images a counter with `in_flight` claimed may still admit under `limit`."""
    return max(0, limit - in_flight)


def replay_budget(room: int) -> int:
    return min(room, MAX_REPLAY)
