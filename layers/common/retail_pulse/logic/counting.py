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
- the job ends, once, when nothing remains (JobRepository.finish_if_done), or early, `failed`, when
  its failures exceed its threshold (domain/rules.threshold_exceeded; its remaining images are
  skipped like a cancel's: JobRepository.fail_early);
- a paused job is counted like an ongoing one (results of batches in flight when it paused);
- each run appends its results to the job's results feed (in counted order, see
  adapters/dynamodb/counting.py) and adds its cost shares to the job;
- a running job earns its progress events (25/50/75 %, first failure) after a run, each at most
  once (JobRepository.claim_event); the caller sends them (logic/notify.send_event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.models import (
    LIVE_STATUSES,
    FinishedJob,
    ImageResult,
    JobRun,
    ReportCounters,
    StreamedResult,
    Tally,
)
from retail_pulse.domain.progress import RATE_MARK_EVERY_S
from retail_pulse.domain.rules import progress_events_due, report_contribution, threshold_exceeded
from retail_pulse.ports import JobRepository, ResultCounter


@dataclass
class Counted:
    counted: int = 0  # results added to their job's counters by this call
    dropped: int = 0  # results of jobs that had ended: deleted, not counted
    repeated: int = 0  # results counted by an earlier delivery of the same records
    finished: list[FinishedJob] = field(default_factory=list)  # jobs this call ended (each by one caller)
    events: list[tuple[str, str]] = field(default_factory=list)  # (job, event) claimed here: to send
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
        run = tally.runs.setdefault(r.task.job_id, JobRun())
        run.indexes.append(r.task.index)
        run.gb_ms += r.gb_ms or 0
        run.request_milli += r.request_milli or 0
        run.bytes_downloaded += r.image_bytes or 0
        run.expires_at = max(run.expires_at, r.task.expires_at)
        began = _began(r)
        if began and (run.started_at is None or began < run.started_at):
            run.started_at = began
        contribution = report_contribution(r)
        if contribution is None or r.task.area is None:
            continue
        client = r.task.client_id or ""
        tally.areas.setdefault((client, r.task.area), ReportCounters()).add(contribution)
        tally.stores.setdefault((client, r.task.area, r.task.store_id), ReportCounters()).add(contribution)
    return tally


def _began(r: ImageResult) -> str | None:
    """When the image's processing began: its end less its duration (our own UTC stamps)."""
    try:
        ended = datetime.fromisoformat(r.processed_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return format_utc(ended - timedelta(milliseconds=r.duration_ms or 0))


def _runs(records: Sequence[StreamedResult], max_updates: int) -> list[list[StreamedResult]]:
    """Consecutive runs of records whose tally fits one atomic write (at most `max_updates` counters)."""
    runs: list[list[StreamedResult]] = []
    run: list[StreamedResult] = []
    keys: set[tuple] = set()
    for record in records:
        task = record.result.task
        new: set[tuple] = {("job", task.job_id), ("feed", task.job_id)}
        if task.area and not record.result.precounted:
            client = task.client_id or ""
            new |= {("area", client, task.area), ("store", client, task.area, task.store_id)}
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
        finished, events = settle_job(job_id, jobs=jobs)
        if finished is not None:
            out.finished.append(finished)
        out.events += [(job_id, event) for event in events]
    return out


def settle_job(job_id: str, *, jobs: JobRepository, now: str | None = None) -> tuple[FinishedJob | None, list[str]]:
    """After a run moved a job's counters: end it when nothing remains, or early when its failures
    exceed its threshold; else move its recent-rate window and claim the progress events it earned.
    Returns the job if this call ended it, and the events this call claimed (to send)."""
    job = jobs.read_job(job_id)
    if job is None or job.status not in LIVE_STATUSES:
        return None, []
    if job.remaining <= 0:
        return jobs.finish_if_done(job_id), []
    now = now or utc_now()
    reason = threshold_exceeded(job.failed, job.total, job.threshold.percentage, job.threshold.count)
    if reason:
        return jobs.fail_early(job_id, reason, now), []
    mark = job.rate_mark
    if mark is None or _age_s(now, mark[0]) >= RATE_MARK_EVERY_S:
        jobs.move_rate_mark(job_id, mark[0] if mark else None, now, job.succeeded + job.failed)
    due = progress_events_due(job.processed, job.failed, job.total, job.events_emitted)
    return None, [event for event in due if jobs.claim_event(job_id, event)]


def _age_s(now: str, then: str) -> float:
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(now) - parse(then)).total_seconds()


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
        out.counted += len(live)
        out.dropped += len(late)
        return
