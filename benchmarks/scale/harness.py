"""The scale model's machinery: a clock slowed by F, Lambda's event source mappings (SQS batches at a
modelled concurrency, the DynamoDB stream per shard), and the loop that runs a scenario to its end.

Time. Everything runs F times slower than modelled: sleeps, the download latency, timeouts and
every per-second budget are stretched by F, so rate x duration (the contention) is what it would be
at full speed; modelled seconds = wall seconds / F. When nothing at all is running and every message
waits for its visibility timeout (today's write path waits out 360 s after a refused batch), the
model's clock jumps to the next message becoming visible (`ModelClock.skip`): the queues and the
limits model move with it, and job times are converted with the skips they span.
"""

from __future__ import annotations

import collections
import json
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devkit.lambda_runtime import LambdaContext
from local_stack.event_source import sqs_record
from local_stack.sqs import Message, Queue

Handler = Callable[[dict, Any], Any]
DISPATCH_SLOTS_MAX = 100  # invocation slots one receive fills at most (1,000 messages)


class ModelClock:
    def __init__(self, factor: float) -> None:
        self.factor = factor
        self._lock = threading.Lock()
        self.start()

    def start(self) -> None:
        self.t0_wall, self.t0_epoch = time.monotonic(), time.time()
        self.skipped = 0.0
        self.skips: list[tuple[float, float]] = []  # (epoch of the skip, modelled seconds skipped)

    def now(self) -> float:
        """Modelled seconds since start (the SQS queues' clock)."""
        return (time.monotonic() - self.t0_wall) / self.factor + self.skipped

    def limits_clock(self) -> float:
        """The DynamoDB limits model's clock: wall seconds (it applies F itself), plus the skips."""
        return time.monotonic() + self.skipped * self.factor

    def skip(self, seconds: float) -> None:
        with self._lock:
            self.skipped += seconds
            self.skips.append((time.time(), seconds))

    def modelled_at(self, stamp: str) -> float:
        """Modelled seconds since start of one of our UTC stamps (utc_now) taken during the run."""
        epoch = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        return (epoch - self.t0_epoch) / self.factor + sum(s for at, s in self.skips if at <= epoch)


@dataclass
class FunctionStats:
    """One function's invocations: count, modelled billed seconds, errors (first few kept)."""

    invocations: int = 0
    billed_s: float = 0.0
    errors: int = 0
    busy: int = 0
    error_samples: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, handler: Handler, event: dict, context: LambdaContext, factor: float) -> tuple[bool, Any]:
        with self.lock:
            self.busy += 1
        started = time.monotonic()
        try:
            return True, json.loads(json.dumps(handler(json.loads(json.dumps(event)), context)))
        except Exception as exc:
            with self.lock:
                self.errors += 1
                if len(self.error_samples) < 3:
                    self.error_samples.append(traceback.format_exc(limit=6))
            return False, {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        finally:
            elapsed = (time.monotonic() - started) / factor
            with self.lock:
                self.busy -= 1
                self.invocations += 1
                self.billed_s += max(0.001, elapsed)
                if len(self.durations) < 200_000:
                    self.durations.append(elapsed)


@dataclass
class QueueStats:
    received_batches: int = 0
    redelivered_batches: int = 0  # batches holding at least one message received before
    redelivered_messages: int = 0
    waited_out_messages: int = 0  # came back only when their visibility timeout ran out
    batches_left_to_timeout: int = 0  # invocations that left a failed record to the visibility timeout
    failed_records: int = 0
    deleted: int = 0
    requests: collections.Counter = field(default_factory=collections.Counter)  # SQS API requests, modelled


class SqsEventSource:
    """Lambda's SQS event source mapping (ReportBatchItemFailures): up to `concurrency` invocations at
    once, each with up to `batch_size` messages; successful records deleted, failed ones left to their
    visibility (the function may shorten it); the scaling ramp of a new mapping is not modelled."""

    def __init__(  # noqa: PLR0917 - the mapping's settings
        self,
        name: str,
        queue: Queue,
        queue_arn: str,
        handler: Handler,
        concurrency: int,
        clock: ModelClock,
        shortened: Callable[[str], bool],
        batch_size: int = 10,
        timeout_s: float = 60.0,
    ) -> None:
        self.name, self.queue, self.queue_arn, self.handler = name, queue, queue_arn, handler
        self.concurrency, self.clock, self.batch_size, self.timeout_s = concurrency, clock, batch_size, timeout_s
        self.shortened = shortened  # receipt handle -> its visibility was shortened (ChangeMessageVisibility)
        self._last_receipt: dict[str, str] = {}
        self.function = FunctionStats()
        self.stats = QueueStats()
        self._permits = threading.Semaphore(concurrency)
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.name)
        self._thread = threading.Thread(target=self._dispatch, name=f"{self.name}-poller", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop receiving; with `wait`, return once every invocation in flight has ended. A run stopped
        at its time limit does not wait: on a starved machine its 1,000 invocations in flight could
        take longer than the run itself (what it reports is then marked as not final anyway)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._pool:
            self._pool.shutdown(wait=wait, cancel_futures=not wait)

    def idle(self) -> bool:
        with self._lock:
            return self.in_flight == 0

    def _dispatch(self) -> None:
        # Lambda polls with many pollers at once; this one thread stands in for them, so it takes
        # every free invocation slot's batch in one receive: when 1,000 invocations end together,
        # refilling them one receive at a time (each waiting for the interpreter) lagged by seconds.
        while not self._stop.is_set():
            if not self._permits.acquire(timeout=0.2):
                continue
            slots = 1
            while slots < DISPATCH_SLOTS_MAX and self._permits.acquire(blocking=False):
                slots += 1
            messages = self.queue.receive(self.batch_size * slots, wait=0.5)  # long polling, modelled seconds
            batches = [messages[i : i + self.batch_size] for i in range(0, len(messages), self.batch_size)]
            for _ in range(slots - len(batches)):
                self._permits.release()
            with self._lock:
                self.in_flight += len(batches)
            for batch in batches:
                self.stats.requests["ReceiveMessage"] += 1
                self._pool.submit(self._invoke, batch)

    def _invoke(self, messages: list[Message]) -> None:
        try:
            self._run(messages)
        finally:
            with self._lock:
                self.in_flight -= 1
            self._permits.release()

    def _run(self, messages: list[Message]) -> None:
        stats = self.stats
        redelivered = [m for m in messages if m.receive_count > 1]
        stats.received_batches += 1
        stats.redelivered_batches += bool(redelivered)
        stats.redelivered_messages += len(redelivered)
        stats.waited_out_messages += sum(
            1 for m in redelivered if not self.shortened(self._last_receipt.get(m.message_id, ""))
        )
        for m in messages:
            self._last_receipt[m.message_id] = m.receipt
        event = {"Records": [self._record(m) for m in messages]}
        context = LambdaContext(function_name=self.name, timeout_s=self.timeout_s * self.clock.factor)
        ok, response = self.function.invoke(self.handler, event, context, self.clock.factor)
        failed = set()
        if not ok:
            failed = {m.message_id for m in messages}
        elif isinstance(response, dict):
            failed = {f.get("itemIdentifier") for f in response.get("batchItemFailures") or []}
        done = [m for m in messages if m.message_id not in failed]
        for m in done:
            self.queue.delete(m.receipt)
        stats.deleted += len(done)
        stats.failed_records += len(failed)
        if done:
            stats.requests["DeleteMessageBatch"] += 1
        receipts = {m.message_id: m.receipt for m in messages}
        if any(not self.shortened(receipts.get(m, "")) for m in failed):
            stats.batches_left_to_timeout += 1

    def _record(self, m: Message) -> dict:
        # The local stack's SQS -> Lambda record, with the template's queue ARN.
        return {**sqs_record(m, self.queue), "eventSourceARN": self.queue_arn}


class StreamConsumers:
    """The stream-triggered function: one StreamPump per (virtual) stream shard, each in its own thread
    (one batch in flight per shard, shards in parallel, as Lambda runs them)."""

    def __init__(self, pumps: list[Any], stream: Any, unread: Callable[[], int], function: FunctionStats) -> None:
        self.pumps, self.stream, self.unread, self.function = pumps, stream, unread, function
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i, pump in enumerate(self.pumps):
            thread = threading.Thread(target=pump.run, args=(self._stop,), name=f"stream-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait:
            for thread in self._threads:
                thread.join()

    def drained(self) -> bool:
        return (
            self.function.busy == 0
            and self.unread() == 0
            and self.stream.pending() == 0
            and all(p.describe()["buffered"] == 0 for p in self.pumps)
        )


@dataclass
class RunLimits:
    wall_s: float  # give up after this much wall time
    modelled_s: float  # or this much modelled time


class Runner:
    """Runs event sources until every job has ended (or the run is stuck), jumping the clock over
    periods where everything waits for a visibility timeout."""

    def __init__(
        self,
        clock: ModelClock,
        sources: list[SqsEventSource],
        streams: StreamConsumers | None,
        jobs_ended: Callable[[], bool],
        limits: RunLimits,
        *,
        progress: Callable[[str], None] | None = None,
        progress_every_s: float = 60.0,
    ) -> None:
        self.clock, self.sources, self.streams = clock, sources, streams
        self.jobs_ended, self.limits = jobs_ended, limits
        self.progress, self.progress_every_s = progress, progress_every_s
        self.outcome = "running"

    def _report(self, wall_s: float) -> None:
        if self.progress is None:
            return
        parts = [f"wall {wall_s:,.0f} s, modelled {self.clock.now():,.1f} s"]
        for s in self.sources:
            visible, in_flight = s.queue.counts()
            parts.append(f"{s.name}: {s.stats.deleted:,} done, {visible:,} visible, {in_flight:,} in flight")
        self.progress("; ".join(parts))

    def _quiet(self) -> bool:
        if not all(s.idle() and s.function.busy == 0 for s in self.sources):
            return False
        return self.streams is None or self.streams.drained()

    def run(self) -> str:
        started = time.monotonic()
        reported = started
        for s in self.sources:
            s.start()
        if self.streams:
            self.streams.start()
        try:
            while True:
                time.sleep(0.1)
                now = time.monotonic()
                if now - reported >= self.progress_every_s:
                    self._report(now - started)
                    reported = now
                if now - started > self.limits.wall_s or self.clock.now() > self.limits.modelled_s:
                    self.outcome = "stopped at the run's time limit"
                    return self.outcome
                counts = [s.queue.counts() for s in self.sources]
                if any(visible for visible, _ in counts) or not self._quiet():
                    continue
                if not any(in_flight for _, in_flight in counts):
                    if self.jobs_ended():
                        self.outcome = "completed"
                        return self.outcome
                    continue
                waits = [w for s in self.sources if (w := s.queue.next_visible_in()) is not None]
                time.sleep(0.05)  # nothing may start between the check and the jump
                if waits and self._quiet() and not any(s.queue.counts()[0] for s in self.sources):
                    self.clock.skip(max(0.0, min(waits)) + 0.001)
        finally:
            wait = self.outcome == "completed"  # else invocations may still be running: leave them
            for s in self.sources:
                s.stop(wait)
            if self.streams:
                self.streams.stop(wait)
