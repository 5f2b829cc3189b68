"""Quotas of images in flight, per client and per job (rules in domain/quota.py). No boto3 here.

Races:
- two batches claiming the last slots: each claim is one conditional write, so at most the limit
  is ever claimed;
- a batch parks its capped images while every batch in flight releases: the parker marks the owner
  waiting, then reads the counter again and replays what there is room for itself;
- two releasers replaying one owner's images: each parked batch is leased to one of them;
- a replayer finding nothing parked clears the job's mark only if no parker marked it since;
- an invocation that dies holding slots: its minute's claims are taken back after STALE_CLAIM_S
  by the next refused claim, release or parker of that owner (`_tidy`); images still parked on an idle
  ongoing job are replayed by the stall sweeper (logic/unfinished.py) in any case.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from retail_pulse.domain.models import LIVE_STATUSES, ImageTask, JobState
from retail_pulse.domain.quota import (
    Admission,
    Claim,
    SlotState,
    client_owner,
    epoch_of,
    job_owner,
    replay_budget,
    room_for,
    stale_epochs,
)
from retail_pulse.ports import ImageQueue, JobRepository, ParkingLot, SlotCounters, StorageRefused

REPLAY_LEASE_S = 60  # a parked batch a replayer holds: sent and forgotten well within this


@dataclass
class Released:
    replayed: int = 0  # parked images sent back to the queue
    errors: list[str] = field(default_factory=list)  # replays that failed (their images stay parked)


@dataclass(frozen=True)
class Quotas:
    """What process_image needs to keep quotas: the counters, where capped images park, the queue
    they are replayed to, and the jobs (to skip paused ones and drop ended ones)."""

    slots: SlotCounters
    parking: ParkingLot
    queue: ImageQueue
    jobs: JobRepository
    client_quota: int

    def admit(self, live: Sequence[ImageTask], states: dict[str, JobState]) -> Admission:
        return admit(live, states, self.client_quota, slots=self.slots)

    def release(self, claims: Sequence[Claim]) -> Released:
        return release(claims, slots=self.slots, parking=self.parking, queue=self.queue, jobs=self.jobs)

    def park_capped(self, admission: Admission) -> int:
        return park_capped(admission, slots=self.slots, parking=self.parking, queue=self.queue, jobs=self.jobs)


def admit(
    live: Sequence[ImageTask],
    states: dict[str, JobState],
    client_quota: int,
    *,
    slots: SlotCounters,
    now_s: float | None = None,
) -> Admission:
    """Claims slots for the batch's live images: first on each job with a `max_concurrency`, then on
    each client (`client_quota`; 0: none). What a claim cannot get is capped under its owner."""
    now_s = time.time() if now_s is None else now_s
    out = Admission()
    try:
        _admit(live, states, client_quota, slots=slots, now_s=now_s, out=out)
    except Exception:
        for claim in out.claims:  # the batch comes again: what it claimed so far is given back
            slots.release(claim.owner, claim.count, claim.epoch)
        raise
    return out


def _admit(
    live: Sequence[ImageTask],
    states: dict[str, JobState],
    client_quota: int,
    *,
    slots: SlotCounters,
    now_s: float,
    out: Admission,
) -> None:
    epoch = epoch_of(now_s)
    passed: list[ImageTask] = []
    for job_id, tasks in _grouped(live, lambda t: t.job_id).items():
        state = states.get(job_id)
        limit = state.max_concurrency if state else None
        if not limit:
            passed += tasks
            continue
        claimed = _claim(slots, job_owner(job_id), tasks, limit=limit, epoch=epoch, now_s=now_s, out=out)
        passed += claimed
    if not client_quota:
        out.admitted = passed
        return
    for client_id, tasks in _grouped(passed, lambda t: t.client_id or "").items():
        if not client_id:  # a job from before clients: no client to count it against
            out.admitted += tasks
            continue
        out.admitted += _claim(
            slots, client_owner(client_id), tasks, limit=client_quota, epoch=epoch, now_s=now_s, out=out
        )
    _give_back_unused_job_slots(out, slots)


def _claim(
    slots: SlotCounters,
    owner: str,
    tasks: list[ImageTask],
    *,
    limit: int,
    epoch: int,
    now_s: float,
    out: Admission,
) -> list[ImageTask]:
    """The images the owner's claim got (at most `limit` of them); the rest capped under it."""
    take = tasks[:limit]
    try:
        got = slots.claim(owner, len(take), limit, epoch)
        if not got and _tidy(slots, owner, slots.slot_state(owner), now_s):
            got = slots.claim(owner, len(take), limit, epoch)
    except StorageRefused:
        # The counter kept refusing (throttled): a quota is a share, not a reason to send a batch back
        # (each receive counts toward the dead-letter queue). Measured without a claim.
        out.unclaimed += len(tasks)
        return list(tasks)
    if not got:
        out.cap(owner, limit, tasks)
        return []
    out.claims.append(Claim(owner, len(take), epoch, limit))
    out.cap(owner, limit, tasks[limit:])
    return take


def _give_back_unused_job_slots(out: Admission, slots: SlotCounters) -> None:
    """A job's claimed images that the client's quota then capped: their job slots given back."""
    admitted = Counter(job_owner(task.job_id) for task in out.admitted)
    kept = []
    for claim in out.claims:
        used = admitted.get(claim.owner, 0) if claim.owner.startswith("job:") else claim.count
        if used < claim.count:
            slots.release(claim.owner, claim.count - used, claim.epoch)
        if used:
            kept.append(Claim(claim.owner, used, claim.epoch, claim.limit))
    out.claims = kept


def _tidy(slots: SlotCounters, owner: str, state: SlotState, now_s: float) -> bool:
    """The counter's minutes put right: past minutes whose claims all ended are dropped (the counter
    does not grow a field a minute), and claims of minutes long over are taken back (their
    invocations died before releasing). True when claims were taken back."""
    stale, current = set(stale_epochs(state.epochs, now_s)), epoch_of(now_s)
    moved = False
    for epoch, count in state.epochs.items():
        if (epoch in stale or (count == 0 and epoch < current)) and slots.take_back(owner, epoch, count) and count:
            moved = True
    return moved


def release(
    claims: Sequence[Claim],
    *,
    slots: SlotCounters,
    parking: ParkingLot,
    queue: ImageQueue,
    jobs: JobRepository,
    now_s: float | None = None,
) -> Released:
    """Gives every slot of the batch back, then replays what each owner has waiting, as far as its
    room goes. A replay that fails is reported, not raised: the slots are back, the batch's results
    are written, and the next release (or the stall sweeper) replays those images."""
    now_s = time.time() if now_s is None else now_s
    states = [(claim, slots.release(claim.owner, claim.count, claim.epoch)) for claim in claims]
    out = Released()
    for claim, state in states:
        try:
            _tidy(slots, claim.owner, state, now_s)
            out.replayed += _replay(
                claim.owner, claim.limit, state, slots=slots, parking=parking, queue=queue, jobs=jobs
            )
        except Exception as exc:
            out.errors.append(f"{claim.owner}: {exc}")
    return out


def park_capped(
    admission: Admission,
    *,
    slots: SlotCounters,
    parking: ParkingLot,
    queue: ImageQueue,
    jobs: JobRepository,
    now_s: float | None = None,
) -> int:
    """Parks the capped images under their jobs and marks them waiting on the owner that capped
    them; then reads each owner again and replays what there is room for (every batch in flight may
    have released before the mark landed). Returns the images replayed at once."""
    now_s = time.time() if now_s is None else now_s
    replayed = 0
    for owner, tasks in admission.capped.items():
        # Parked in pieces no bigger than the owner's limit: a replay sends whole pieces.
        piece = min(admission.limits[owner], 10)
        for job_id, batch in _grouped(tasks, lambda t: t.job_id).items():
            for start in range(0, len(batch), piece):
                parking.park(job_id, batch[start : start + piece])
            slots.mark_waiting(owner, job_id)
        state = slots.slot_state(owner)
        if _tidy(slots, owner, state, now_s):
            state = slots.slot_state(owner)
        replayed += _replay(owner, admission.limits[owner], state, slots=slots, parking=parking, queue=queue, jobs=jobs)
    return replayed


def _replay(
    owner: str,
    limit: int,
    state: SlotState,
    *,
    slots: SlotCounters,
    parking: ParkingLot,
    queue: ImageQueue,
    jobs: JobRepository,
) -> int:
    room = replay_budget(room_for(limit, state.in_flight))
    if not state.waiting or room <= 0:  # no room: the release that makes some replays
        return 0
    job_states = jobs.job_states(sorted(state.waiting))
    # The room is shared by the waiting jobs, in a random order each time: a client's small job is
    # not left behind its own big one (a job with no progress for long would be swept as stalled).
    waiting = list(state.waiting.items())
    random.shuffle(waiting)
    share = max(1, -(-room // len(waiting)))
    sent = 0
    for job_id, marker in waiting:
        job = job_states.get(job_id)
        if job is not None and job.status == "paused":
            continue  # its resume replays everything parked
        live = job is not None and job.status in LIVE_STATUSES
        if live and sent >= room:
            continue
        # An ended (or unknown) job's parked images are dropped, whatever the room.
        wanted = min(share, room - sent) if live else 10**9
        leased, found = parking.lease_parked(job_id, wanted, REPLAY_LEASE_S)
        for key, tasks in leased:
            if live and tasks:
                queue.send(tasks)  # as new messages: their receive counts start again
                sent += len(tasks)
            parking.unpark(job_id, [key])
        if not found or not live:
            slots.clear_waiting(owner, job_id, marker)
    return sent


def _grouped(tasks: Sequence[ImageTask], key: Callable[[ImageTask], str]) -> dict[str, list[ImageTask]]:
    out: dict[str, list[ImageTask]] = {}
    for task in tasks:
        out.setdefault(key(task), []).append(task)
    return out
