"""Quota rules (domain/quota.py, logic/admission.py) on in-memory counters: what a batch admits,
what it caps, what releases and parkers replay, and how claims of dead invocations come back."""

from __future__ import annotations

import secrets

from retail_pulse.domain.models import ImageTask, JobState
from retail_pulse.domain.quota import (
    EPOCH_S,
    STALE_CLAIM_S,
    Claim,
    SlotState,
    client_owner,
    epoch_of,
    job_owner,
    stale_epochs,
)
from retail_pulse.logic.admission import admit, park_capped, release

NOW = 1_800_000_000.0


class FakeSlots:
    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def _item(self, owner: str) -> dict:
        return self.items.setdefault(owner, {"n": 0, "e": {}, "w": {}})

    def claim(self, owner, count, limit, epoch) -> bool:
        item = self._item(owner)
        if item["n"] > limit - count:
            return False
        item["n"] += count
        item["e"][epoch] = item["e"].get(epoch, 0) + count
        return True

    def release(self, owner, count, epoch) -> SlotState:
        item = self._item(owner)
        if epoch in item["e"]:
            item["n"] -= count
            item["e"][epoch] -= count
        return self.slot_state(owner)

    def slot_state(self, owner) -> SlotState:
        item = self._item(owner)
        return SlotState(item["n"], dict(item["e"]), dict(item["w"]))

    def take_back(self, owner, epoch, count) -> bool:
        item = self._item(owner)
        if item["e"].get(epoch) != count:
            return False
        item["n"] -= count
        del item["e"][epoch]
        return True

    def mark_waiting(self, owner, job_id) -> None:
        self._item(owner)["w"][job_id] = secrets.token_hex(4)

    def clear_waiting(self, owner, job_id, marker) -> None:
        if self._item(owner)["w"].get(job_id) == marker:
            del self._item(owner)["w"][job_id]


class FakeParking:
    def __init__(self) -> None:
        self.parked: dict[str, dict[str, list[ImageTask]]] = {}

    def park(self, job_id, tasks) -> str:
        key = secrets.token_hex(4)
        self.parked.setdefault(job_id, {})[key] = list(tasks)
        return key

    def lease_parked(self, job_id, max_images, lease_s):
        out, images = [], 0
        for key, tasks in self.parked.get(job_id, {}).items():
            if images >= max_images:
                break
            out.append((key, tasks))
            images += len(tasks)
        return out, bool(self.parked.get(job_id))

    def unpark(self, job_id, keys) -> None:
        for key in keys:
            self.parked[job_id].pop(key, None)

    def count(self, job_id) -> int:
        return sum(len(t) for t in self.parked.get(job_id, {}).values())


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[ImageTask] = []

    def send(self, tasks) -> None:
        self.sent += tasks


class FakeJobs:
    def __init__(self, states: dict[str, JobState]) -> None:
        self.states = states

    def job_states(self, job_ids):
        return {j: self.states[j] for j in job_ids if j in self.states}


def tasks(job_id: str, n: int, client: str = "a") -> list[ImageTask]:
    return [ImageTask(job_id, i, "S1", f"https://x/{i}", "2024-03-15T10:00:00Z", 0, client_id=client) for i in range(n)]


def ongoing(job_id: str, cap: int | None = None) -> JobState:
    return JobState(job_id, "ongoing", False, cap)


def test_a_claim_older_than_any_invocation_is_stale_and_a_recent_one_is_not():
    now = NOW
    assert stale_epochs([epoch_of(now)], now) == []
    assert stale_epochs([epoch_of(now - STALE_CLAIM_S)], now) == []  # its minute may still run
    assert stale_epochs([epoch_of(now - STALE_CLAIM_S - EPOCH_S)], now) == [epoch_of(now - STALE_CLAIM_S - EPOCH_S)]


def test_the_job_cap_then_the_client_quota_and_unused_job_slots_go_back():
    slots = FakeSlots()
    states = {"j": ongoing("j", cap=5)}
    admission = admit(tasks("j", 10), states, 3, slots=slots, now_s=NOW)
    assert len(admission.admitted) == 3
    assert len(admission.capped[job_owner("j")]) == 5 and len(admission.capped[client_owner("a")]) == 2
    assert slots.slot_state(job_owner("j")).in_flight == 3  # 5 claimed, 2 given back
    assert slots.slot_state(client_owner("a")).in_flight == 3
    assert {(c.owner, c.count) for c in admission.claims} == {(job_owner("j"), 3), (client_owner("a"), 3)}


def test_images_of_jobs_from_before_clients_and_without_quota_pass():
    slots = FakeSlots()
    legacy = [ImageTask("old", i, "S1", "https://x", "2024-03-15T10:00:00Z", 0) for i in range(10)]
    assert len(admit(legacy, {}, 2, slots=slots, now_s=NOW).admitted) == 10
    assert len(admit(tasks("j", 10), {}, 0, slots=slots, now_s=NOW).admitted) == 10
    assert slots.items == {}


def test_a_full_counter_of_a_dead_invocation_is_taken_back_by_the_next_claim():
    slots = FakeSlots()
    old = epoch_of(NOW - STALE_CLAIM_S - 2 * EPOCH_S)
    assert slots.claim(client_owner("a"), 4, 4, old)
    admission = admit(tasks("j", 4), {"j": ongoing("j")}, 4, slots=slots, now_s=NOW)
    assert len(admission.admitted) == 4
    assert slots.slot_state(client_owner("a")).epochs == {epoch_of(NOW): 4}


def test_a_parker_replays_itself_when_every_release_came_before_its_mark():
    slots, parking, queue = FakeSlots(), FakeParking(), FakeQueue()
    jobs = FakeJobs({"j": ongoing("j")})
    assert slots.claim(client_owner("a"), 4, 4, epoch_of(NOW))  # another batch holds the whole quota
    admission = admit(tasks("j", 10), jobs.states, 4, slots=slots, now_s=NOW)
    assert admission.admitted == [] and admission.capped_images == 10
    slots.release(client_owner("a"), 4, epoch_of(NOW))  # ...and ends before the parker marks
    replayed = park_capped(admission, slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=NOW)
    assert replayed == len(queue.sent) == 4 and parking.count("j") == 6
    assert "j" in slots.slot_state(client_owner("a")).waiting


def test_a_release_replays_room_skips_a_paused_job_drops_an_ended_one_and_clears_marks():
    slots, parking, queue = FakeSlots(), FakeParking(), FakeQueue()
    owner, epoch = client_owner("a"), epoch_of(NOW)
    jobs = FakeJobs(
        {"run": ongoing("run"), "held": JobState("held", "paused", False), "gone": JobState("gone", "cancelled", False)}
    )
    for job_id in ("run", "held", "gone"):
        for start in range(0, 8, 4):
            parking.park(job_id, tasks(job_id, 8)[start : start + 4])
        slots.mark_waiting(owner, job_id)
    assert slots.claim(owner, 6, 6, epoch)
    released = release([Claim(owner, 6, epoch, 6)], slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=NOW)
    # Room 6 shared by three waiting jobs: "run" takes its share (2), i.e. one whole piece of 4.
    assert released.replayed == 4 and {t.job_id for t in queue.sent} == {"run"}
    assert parking.count("held") == 8 and parking.count("gone") == 0
    waiting = slots.slot_state(owner).waiting
    assert "held" in waiting and "gone" not in waiting
    for _ in range(2):  # the next release sends the rest; the one after finds nothing and clears the mark
        assert "run" in slots.slot_state(owner).waiting
        assert slots.claim(owner, 1, 6, epoch)
        release([Claim(owner, 1, epoch, 6)], slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=NOW)
    assert "run" not in slots.slot_state(owner).waiting and len(queue.sent) == 8


def test_a_release_shares_its_room_between_a_clients_waiting_jobs():
    slots, parking, queue = FakeSlots(), FakeParking(), FakeQueue()
    owner, epoch = client_owner("a"), epoch_of(NOW)
    jobs = FakeJobs({"big": ongoing("big"), "small": ongoing("small")})
    for job_id, pieces in (("big", 50), ("small", 2)):
        for _ in range(pieces):
            parking.park(job_id, tasks(job_id, 10))
        slots.mark_waiting(owner, job_id)
    assert slots.claim(owner, 20, 20, epoch)
    release([Claim(owner, 20, epoch, 20)], slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=NOW)
    assert {t.job_id for t in queue.sent} == {"big", "small"}  # whatever the order the marks are read in


def test_a_counter_keeps_no_field_for_minutes_whose_claims_all_ended():
    slots, parking, queue, jobs = FakeSlots(), FakeParking(), FakeQueue(), FakeJobs({})
    owner = client_owner("a")
    for minute in range(5):  # a claim and its release within each minute
        now = NOW + minute * EPOCH_S
        assert slots.claim(owner, 3, 10, epoch_of(now))
        release([Claim(owner, 3, epoch_of(now), 10)], slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=now)
    assert slots.slot_state(owner).epochs == {epoch_of(NOW + 4 * EPOCH_S): 0}  # only the current minute's


def test_a_release_also_takes_back_the_claims_of_a_dead_invocation():
    slots, parking, queue, jobs = FakeSlots(), FakeParking(), FakeQueue(), FakeJobs({})
    owner, old = client_owner("a"), epoch_of(NOW - STALE_CLAIM_S - 2 * EPOCH_S)
    assert slots.claim(owner, 4, 10, old)  # never released: its invocation died
    assert slots.claim(owner, 3, 10, epoch_of(NOW))
    release([Claim(owner, 3, epoch_of(NOW), 10)], slots=slots, parking=parking, queue=queue, jobs=jobs, now_s=NOW)
    assert slots.slot_state(owner) == SlotState(0, {epoch_of(NOW): 0}, {})
