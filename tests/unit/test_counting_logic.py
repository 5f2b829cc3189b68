"""logic/counting.py with an in-memory counter that behaves like the DynamoDB one (watermark,
ongoing-only job updates, refusals): exactly-once counting under redelivery, crashes and late results."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from retail_pulse.domain.models import (
    Applied,
    FinishedJob,
    ImageResult,
    ImageTask,
    ReportCounters,
    StreamedResult,
    Tally,
)
from retail_pulse.domain.rules import report_contribution
from retail_pulse.logic.counting import CountingIncomplete, count_results, tally_of
from retail_pulse.ports import StorageRefused


@dataclass
class FakeJob:
    total: int
    status: str = "ongoing"
    succeeded: int = 0
    failed: int = 0

    @property
    def remaining(self) -> int:
        return self.total - self.succeeded - self.failed


@dataclass
class FakeCounter:
    """Watermark per shard, job counters, report sums; `refuse` makes the next N applies fail."""

    jobs: dict[str, FakeJob]
    max_updates: int = 99
    watermarks: dict[str, int] = field(default_factory=dict)
    areas: dict[str, ReportCounters] = field(default_factory=dict)
    stores: dict[tuple[str, str], ReportCounters] = field(default_factory=dict)
    deleted: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refuse: int = 0
    applies: int = 0

    def counted_through(self, shard: str) -> str | None:
        return str(self.watermarks[shard]) if shard in self.watermarks else None

    def apply(self, shard: str, first: str, last: str, tally: Tally, deadline: float) -> Applied:
        assert tally.updates <= self.max_updates
        if self.refuse:
            self.refuse -= 1
            raise StorageRefused("throttled")
        if shard in self.watermarks and self.watermarks[shard] >= int(first):
            return Applied(False, counted_before=True)
        ended = frozenset(j for j in tally.jobs if j not in self.jobs or self.jobs[j].status != "ongoing")
        if ended:
            return Applied(False, ended_jobs=ended)
        self.applies += 1
        self.watermarks[shard] = int(last)
        for job_id, (ok, bad) in tally.jobs.items():
            self.jobs[job_id].succeeded += ok
            self.jobs[job_id].failed += bad
        for area, c in tally.areas.items():
            self.areas.setdefault(area, ReportCounters()).add(c)
        for key, c in tally.stores.items():
            self.stores.setdefault(key, ReportCounters()).add(c)
        return Applied(True)

    def record_store_errors(self, results, deadline) -> None:
        self.errors += [f"{r.task.job_id}/{r.task.store_id}" for r in results]

    def advance_last_visits(self, shard, tally, deadline) -> None:
        pass

    def delete_results(self, keys) -> None:
        self.deleted += list(keys)

    # JobRepository's part
    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        job = self.jobs[job_id]
        if job.status != "ongoing" or job.remaining > 0:
            return None
        job.status = "failed" if job.failed else "completed"
        return FinishedJob(job_id, job.status, "2024-01-01T00:00:00.000Z", "2024-01-01T00:00:01.000Z")


def result(job: str, index: int, status: str = "succeeded", **task) -> ImageResult:
    base = {"store_id": "S1", "area": "A1", "visit_time_utc": "2024-03-15T10:00:00.000Z", "first_in_visit": index == 0}
    base.update(task)
    t = ImageTask(job, index, base.pop("store_id"), f"https://x/{index}.jpg", "2024-03-15T10:00:00Z", 0, **base)
    return ImageResult(t, status, "2024-03-15T10:00:01.000Z", duration_ms=10)


def stream(results: list[ImageResult], first_seq: int = 100) -> list[StreamedResult]:
    return [StreamedResult(str(first_seq + i), r) for i, r in enumerate(results)]


def test_a_run_counts_once_however_often_it_is_delivered():
    counter = FakeCounter({"j": FakeJob(total=3)})
    records = stream([result("j", 0), result("j", 1, "failed"), result("j", 2)])
    first = count_results("shard-1", records, counter=counter, jobs=counter, deadline=1e12)
    assert (first.counted, [f.job_id for f in first.finished]) == (3, ["j"])
    again = count_results("shard-1", records, counter=counter, jobs=counter, deadline=1e12)
    assert (again.counted, again.repeated, again.finished) == (0, 3, [])
    job = counter.jobs["j"]
    assert (job.succeeded, job.failed, job.status) == (2, 1, "failed")
    assert counter.areas["A1"].images == 3 and counter.areas["A1"].visits == 1


def test_a_redelivery_that_overlaps_what_was_counted_counts_only_the_rest():
    counter = FakeCounter({"j": FakeJob(total=4)})
    records = stream([result("j", i) for i in range(4)])
    count_results("s", records[:2], counter=counter, jobs=counter, deadline=1e12)
    out = count_results("s", records, counter=counter, jobs=counter, deadline=1e12)  # Lambda retries the batch
    assert (out.counted, out.repeated) == (2, 2)
    assert counter.jobs["j"].succeeded == 4 and counter.jobs["j"].status == "completed"


def test_refused_storage_stops_at_the_first_uncounted_record_and_the_retry_finishes():
    counter = FakeCounter({"j": FakeJob(total=6)}, max_updates=3)  # job + area + store: one record per run
    records = stream([result("j", i, store_id=f"S{i}") for i in range(6)])
    counter.refuse = 0
    first = count_results("s", records[:2], counter=counter, jobs=counter, deadline=1e12)
    assert first.counted == 2
    counter.refuse = 1
    with pytest.raises(CountingIncomplete) as stopped:
        count_results("s", records, counter=counter, jobs=counter, deadline=1e12)
    assert stopped.value.seq == records[2].seq  # the first record not counted
    done = count_results("s", records[2:], counter=counter, jobs=counter, deadline=1e12)
    assert done.counted == 4 and counter.jobs["j"].succeeded == 6


def test_results_of_an_ended_job_are_dropped_and_deleted_while_other_jobs_count():
    counter = FakeCounter({"live": FakeJob(total=2), "gone": FakeJob(total=5, status="cancelled")})
    records = stream([result("live", 0), result("gone", 3), result("live", 1), result("gone", 4)])
    out = count_results("s", records, counter=counter, jobs=counter, deadline=1e12)
    assert (out.counted, out.dropped) == (2, 2)
    assert sorted(counter.deleted) == [("gone", 3), ("gone", 4)]
    assert counter.jobs["live"].status == "completed" and counter.jobs["gone"].succeeded == 0
    assert counter.watermarks["s"] == int(records[-1].seq)


def test_runs_are_split_so_each_write_stays_within_the_transaction_limit():
    counter = FakeCounter({"j": FakeJob(total=40)}, max_updates=9)
    records = stream([result("j", i, store_id=f"S{i}") for i in range(40)])  # 40 stores: 40 store counters
    out = count_results("s", records, counter=counter, jobs=counter, deadline=1e12)
    assert out.counted == 40 and counter.applies > 4 and len(counter.stores) == 40


def test_precounted_results_move_no_counter():
    counter = FakeCounter({"j": FakeJob(total=2, failed=1)})
    unknown = ImageResult(result("j", 0).task, "failed", "t", error="unknown store", precounted=True)
    out = count_results("s", stream([unknown, result("j", 1)]), counter=counter, jobs=counter, deadline=1e12)
    assert out.counted == 2 and counter.jobs["j"].failed == 1 and counter.jobs["j"].succeeded == 1
    assert counter.errors == []  # submit wrote the unknown store's error


def test_a_retried_image_moves_from_failed_to_succeeded_in_reports_and_never_doubles():
    first_run = [result("a", 0), result("a", 1), result("a", 2, "failed")]
    retried_ok = result("b", 0, retried=True, first_in_visit=False)
    retried_bad = result("c", 0, "failed", retried=True, first_in_visit=False)
    area = ReportCounters()
    for r in [*first_run, retried_ok]:
        contribution = report_contribution(r)
        assert contribution is not None
        area.add(contribution)
    assert (area.visits, area.images, area.failed, area.attempts) == (1, 3, 0, 4)
    bad = report_contribution(retried_bad)
    assert bad is not None and (bad.images, bad.failed, bad.visits) == (0, 0, 0)


def test_tally_groups_jobs_areas_and_stores():
    tally = tally_of([result("j", 0), result("j", 1, "failed", store_id="S2"), result("k", 0, area=None)])
    assert tally.jobs == {"j": (1, 1), "k": (1, 0)}
    assert set(tally.stores) == {("A1", "S1"), ("A1", "S2")}
    assert tally.areas["A1"].images == 2
