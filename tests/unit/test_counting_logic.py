"""logic/counting.py with an in-memory counter that behaves like the DynamoDB one (watermark,
ongoing-only job updates, refusals): exactly-once counting under redelivery, crashes and late results."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from retail_pulse.domain.models import (
    LIVE_STATUSES,
    Applied,
    FailureThreshold,
    FinishedJob,
    ImageResult,
    ImageTask,
    Job,
    ReportCounters,
    StreamedResult,
    Tally,
)
from retail_pulse.domain.rules import classify_error, report_contribution, threshold_exceeded
from retail_pulse.logic.counting import CountingIncomplete, count_results, tally_of
from retail_pulse.ports import StorageRefused


@dataclass
class FakeJob:
    total: int
    status: str = "ongoing"
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    threshold: FailureThreshold = field(default_factory=FailureThreshold)
    events: set = field(default_factory=set)
    feed: list = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.total - self.succeeded - self.failed - self.skipped


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
        ended = frozenset(j for j in tally.jobs if j not in self.jobs or self.jobs[j].status not in LIVE_STATUSES)
        if ended:
            return Applied(False, ended_jobs=ended)
        self.applies += 1
        self.watermarks[shard] = int(last)
        for job_id, (ok, bad) in tally.jobs.items():
            self.jobs[job_id].succeeded += ok
            self.jobs[job_id].failed += bad
            self.jobs[job_id].feed += tally.runs[job_id].indexes
        for area, c in tally.areas.items():
            self.areas.setdefault(area, ReportCounters()).add(c)
        for key, c in tally.stores.items():
            self.stores.setdefault(key, ReportCounters()).add(c)
        return Applied(True)

    def record_store_errors(self, results, deadline) -> None:
        self.errors += [f"{r.task.job_id}/{r.task.store_id}" for r in results]

    def delete_results(self, keys) -> None:
        self.deleted += list(keys)

    # JobRepository's part
    def read_job(self, job_id: str) -> Job | None:
        f = self.jobs.get(job_id)
        if f is None:
            return None
        return Job(
            job_id, f.status, f.total, f.succeeded, f.failed, "2024-01-01T00:00:00.000Z",
            skipped=f.skipped, threshold=f.threshold, events_emitted=frozenset(f.events),
        )  # fmt: skip

    def fail_early(self, job_id: str, reason: str, now: str) -> FinishedJob | None:
        job = self.jobs[job_id]
        if job.status not in LIVE_STATUSES:
            return None
        job.status, job.skipped = "failed", job.remaining
        return FinishedJob(job_id, "failed", "2024-01-01T00:00:00.000Z", now)

    def claim_event(self, job_id: str, event: str) -> bool:
        if event in self.jobs[job_id].events:
            return False
        self.jobs[job_id].events.add(event)
        return True

    def move_rate_mark(self, job_id, previous_at, now, processed) -> None:
        pass

    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        job = self.jobs[job_id]
        if job.status not in LIVE_STATUSES or job.remaining > 0:
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
    area = counter.areas[("", "A1")]  # "": a job from before clients
    assert (area.images, area.visits) == (3, 1)


def test_a_redelivery_that_overlaps_what_was_counted_counts_only_the_rest():
    counter = FakeCounter({"j": FakeJob(total=4)})
    records = stream([result("j", i) for i in range(4)])
    count_results("s", records[:2], counter=counter, jobs=counter, deadline=1e12)
    out = count_results("s", records, counter=counter, jobs=counter, deadline=1e12)  # Lambda retries the batch
    assert (out.counted, out.repeated) == (2, 2)
    assert counter.jobs["j"].succeeded == 4 and counter.jobs["j"].status == "completed"


def test_refused_storage_stops_at_the_first_uncounted_record_and_the_retry_finishes():
    counter = FakeCounter({"j": FakeJob(total=6)}, max_updates=4)  # job + feed + area + store: a record per run
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
    assert set(tally.stores) == {("", "A1", "S1"), ("", "A1", "S2")}  # "": jobs from before clients
    assert tally.areas[("", "A1")].images == 2


# -- job control: failure thresholds, paused jobs, progress events, the feed ---------------------------
def test_a_job_whose_failures_exceed_its_threshold_ends_failed_early_and_skips_the_rest():
    job = FakeJob(total=10, threshold=FailureThreshold(count=1))
    counter = FakeCounter({"j": job})
    first = count_results("s", stream([result("j", 0, "failed")]), counter=counter, jobs=counter, deadline=1e12)
    assert first.finished == [] and job.status == "ongoing"  # 1 failure is tolerated
    out = count_results("s", stream([result("j", 1, "failed"), result("j", 2)], 200), counter=counter, jobs=counter,
                        deadline=1e12)  # fmt: skip
    assert [f.status for f in out.finished] == ["failed"]
    assert (job.succeeded, job.failed, job.skipped) == (1, 2, 7)  # processed = total, exactly
    late = count_results("s", stream([result("j", 3)], 300), counter=counter, jobs=counter, deadline=1e12)
    assert late.dropped == 1 and counter.deleted == [("j", 3)] and job.succeeded == 1  # like a cancel


def test_a_percentage_threshold_as_distributed_map():
    assert threshold_exceeded(5, 100, 5.0, None) is None  # 5 % of 100 tolerated
    assert "tolerated_failure_percentage" in threshold_exceeded(6, 100, 5.0, None)
    assert threshold_exceeded(0, 100, 0.0, None) is None
    assert threshold_exceeded(1, 100, 0.0, None)
    assert threshold_exceeded(3, 100, None, 3) is None and threshold_exceeded(4, 100, 50.0, 3)


def test_a_paused_job_is_counted_and_ends_when_nothing_remains():
    job = FakeJob(total=2, status="paused")
    counter = FakeCounter({"j": job})
    out = count_results("s", stream([result("j", 0), result("j", 1)]), counter=counter, jobs=counter, deadline=1e12)
    assert out.counted == 2 and job.status == "completed"


def test_progress_events_are_claimed_once_each_and_results_feed_in_counted_order():
    job = FakeJob(total=8)
    counter = FakeCounter({"j": job})
    out = count_results("s", stream([result("j", 5), result("j", 1, "failed")]), counter=counter, jobs=counter,
                        deadline=1e12)  # fmt: skip
    assert out.events == [("j", "progress:25"), ("j", "first_failure")]
    again = count_results("t", stream([result("j", 0), result("j", 2)]), counter=counter, jobs=counter, deadline=1e12)
    assert again.events == [("j", "progress:50")]
    assert job.feed == [5, 1, 0, 2]


def test_error_classes():
    assert classify_error("HTTP 404 downloading http://x") == "permanent"
    assert classify_error("HTTP 503 downloading http://x") == "transient"
    assert classify_error("download timed out: http://x") == "transient"
    assert classify_error("store_id X not in Store Master") == "store"
    assert classify_error("whatever", "transient") == "transient"
