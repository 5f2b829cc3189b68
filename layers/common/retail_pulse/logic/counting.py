"""Counting ended images into their jobs and the reports, from the table's stream.

process_image writes one result item per image (exactly once: the Put is conditional). The stream
delivers each new result item once per stream shard, in order; this consumer adds runs of them to
the counters in one atomic write that also moves the shard's watermark, so a run is counted once
however often Lambda redelivers it. No job item, report item or transaction is touched per image:
a few writes per run of up to a thousand results, which is what keeps one job's item and one area's
counters under DynamoDB's per-item and per-partition rates at any processing concurrency.

Rules applied here:
- results written at submit (stores not in the Store Master) were counted when the job was created;
- a job that is no longer ongoing (cancelled, failed by the sweeper or an enqueue error) takes no
  more counts: results that reach it late are deleted, so its results and counts agree;
- what an image adds to the reports: domain/rules.report_contribution (a retried image moves from
  failed to succeeded, never counts twice);
- the job ends, once, when nothing remains (JobRepository.finish_if_done).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from retail_pulse.domain.models import FinishedJob, ImageResult, ReportCounters, StreamedResult, Tally
from retail_pulse.domain.rules import report_contribution
from retail_pulse.ports import JobRepository, ResultCounter


@dataclass
class Counted:
    counted: int = 0  # results added to their job's counters by this call
    dropped: int = 0  # results of jobs that had ended: deleted, not counted
    repeated: int = 0  # results counted by an earlier delivery of the same records
    finished: list[FinishedJob] = field(default_factory=list)  # jobs this call ended (each by one caller)
    not_counted_from: str | None = None  # sequence number from which the records must come again


class CountingIncomplete(Exception):
    """Our storage refused the counting writes until the deadline; records from `seq` on come again."""

    def __init__(self, seq: str, cause: Exception) -> None:
        super().__init__(f"counting stopped before sequence number {seq}: {cause}")
        self.seq = seq


def _after(records: Sequence[StreamedResult], watermark: str | None) -> list[StreamedResult]:
    """The records past the watermark (stream sequence numbers are decimal strings of any width)."""
    return [r for r in records if watermark is None or int(r.seq) > int(watermark)]


def tally_of(results: Sequence[ImageResult]) -> Tally:
    tally = Tally()
    for r in results:
        if r.precounted:
            continue
        ok, bad = tally.jobs.get(r.task.job_id, (0, 0))
        tally.jobs[r.task.job_id] = (ok + (r.status == "succeeded"), bad + (r.status != "succeeded"))
        contribution = report_contribution(r)
        if contribution is None or r.task.area is None:
            continue
        tally.areas.setdefault(r.task.area, ReportCounters()).add(contribution)
        tally.stores.setdefault((r.task.area, r.task.store_id), ReportCounters()).add(contribution)
    return tally


def _runs(records: Sequence[StreamedResult], max_updates: int) -> list[list[StreamedResult]]:
    """Consecutive runs of records whose tally fits one atomic write (at most `max_updates` counters)."""
    runs: list[list[StreamedResult]] = []
    run: list[StreamedResult] = []
    keys: set[tuple] = set()
    for record in records:
        task = record.result.task
        new: set[tuple] = {("job", task.job_id)}
        if task.area and not record.result.precounted:
            new |= {("area", task.area), ("store", task.area, task.store_id)}
        if run and len(keys | new) > max_updates:
            runs.append(run)
            run, keys = [], set()
        run.append(record)
        keys |= new
    if run:
        runs.append(run)
    return runs


def count_results(
    stream_shard: str,
    records: Sequence[StreamedResult],
    *,
    counter: ResultCounter,
    jobs: JobRepository,
    deadline: float,
) -> Counted:
    """Count the shard's streamed results (in stream order) into their jobs and reports, exactly once.

    Raises CountingIncomplete (with the first record not counted) when storage kept refusing."""
    out = Counted()
    watermark = counter.counted_through(stream_shard)
    pending = _after(records, watermark)
    out.repeated = len(records) - len(pending)
    ended: set[str] = set()
    touched: set[str] = set()
    for run in _runs(pending, counter.max_updates):
        try:
            _count_run(stream_shard, run, counter, deadline, ended, out)
        except Exception as exc:
            # Whatever failed, nothing of this run was counted (the watermark moves with the counts).
            raise CountingIncomplete(run[0].seq, exc) from exc
        touched |= {r.result.task.job_id for r in run if r.result.task.job_id not in ended}
    for job_id in sorted(touched):
        finished = jobs.finish_if_done(job_id)
        if finished is not None:
            out.finished.append(finished)
    return out


def _count_run(  # noqa: PLR0917 - one run's state, threaded through from count_results
    stream_shard: str,
    run: list[StreamedResult],
    counter: ResultCounter,
    deadline: float,
    ended: set[str],
    out: Counted,
) -> None:
    while True:
        live = [r.result for r in run if r.result.task.job_id not in ended]
        tally = tally_of(live)
        # Store errors first: once a job's counts show a failure, the failing store's error is there.
        counter.record_store_errors([r for r in live if r.status == "failed" and not r.precounted], deadline)
        applied = counter.apply(stream_shard, run[0].seq, run[-1].seq, tally, deadline)
        if applied.ended_jobs:
            ended |= applied.ended_jobs  # count the run again without them
            continue
        if applied.counted_before:
            # Counted by an earlier delivery (the watermark moved since we read it): go on after it.
            rest = _after(run, counter.counted_through(stream_shard))
            out.repeated += len(run) - len(rest)
            if not rest:
                return
            run = rest
            continue
        late = [r.result for r in run if r.result.task.job_id in ended and not r.result.precounted]
        if late:
            counter.delete_results([(r.task.job_id, r.task.index) for r in late])
        counter.advance_last_visits(stream_shard, tally, deadline)
        out.counted += len(live)
        out.dropped += len(late)
        return
