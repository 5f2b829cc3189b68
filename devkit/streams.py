"""Drives a DynamoDB stream into a function the way Lambda's DynamoDB event source mapping does, for
everything that runs functions without AWS: the in-process tests (moto's `mock_aws`), the local
stack (moto in server mode, over HTTP) and benchmarks.

What is emulated, per shard: records in stream order; one batch in flight (ParallelizationFactor 1:
the shards of one pump are served by one thread, one after the other); batches of up to BatchSize
records, waiting up to MaximumBatchingWindowInSeconds for a batch to fill; FilterCriteria applied
before batching (a record that matches no filter is skipped and counts as processed); a failed
invocation retried with the same records from the same position after a small backoff, until it
succeeds (MaximumRetryAttempts -1) or the attempts are used up (the batch is then discarded and
counted: there is no OnFailure destination here); with BisectBatchOnFunctionError, a failed batch
is retried as its first half; with ReportBatchItemFailures, the position is checkpointed before the
lowest reported sequence number and reading resumes there (an invalid response fails the whole
batch). Shards are discovered with DescribeStream, children after their parents are read to the end.

Not emulated: the 6 MB payload limit, MaximumRecordAgeInSeconds, a tumbling window's final invoke, several batches
per shard at once (ParallelizationFactor > 1), and record expiry after 24 hours.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from devkit import event_filter

Invoke = Callable[[dict], tuple[bool, Any]]  # event -> (succeeded, payload or error)

FETCH_LIMIT = 1000  # GetRecords' maximum: moto over HTTP costs per request far more than per record
BACKOFF_BASE_S = 0.05
BACKOFF_MAX_S = 2.0
DISCOVERY_INTERVAL_S = 10.0


@dataclass
class _Record:
    sequence: str
    created: float  # epoch seconds, as precise as the stream gives it (the event's is whole seconds)
    event_record: dict  # as Lambda delivers it


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    initial_position: str  # TRIM_HORIZON or LATEST, for the first iterator
    iterator: str | None = None
    last_read: str | None = None  # sequence number of the last record read (buffered or skipped)
    read_to_end: bool = False  # a closed shard whose last record has been read
    buffer: deque[_Record] = field(default_factory=deque)  # read, matching, not yet delivered
    window_started: float | None = None
    attempts: int = 0  # failed attempts at the batch at the head of the buffer
    batch_limit: int = 0  # below batch_size while bisecting a failing batch
    retry_at: float = 0.0

    @property
    def ended(self) -> bool:
        return self.read_to_end and not self.buffer


class StreamPump:
    """One event source mapping: a table's stream -> `invoke`. Use `poll_once()` synchronously (tests)
    or `run(stop_event)` in a thread of its own (local stack)."""

    def __init__(
        self,
        streams_client: Any,
        stream_arn: str,
        invoke: Invoke,
        *,
        batch_size: int = 100,
        batching_window_s: float = 0.0,
        filters: list[dict] | None = None,
        report_item_failures: bool = False,
        starting_position: str = "TRIM_HORIZON",
        max_retry_attempts: int = -1,
        bisect_on_error: bool = False,
        tumbling_window_s: float = 0.0,
        poll_interval_s: float = 0.1,
        name: str = "",
    ) -> None:
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"StartingPosition {starting_position!r}: DynamoDB takes TRIM_HORIZON or LATEST")
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"BatchSize {batch_size} out of range")
        self.client = streams_client
        # GetRecords bodies are already in Lambda's event format (numbers, base64); botocore's parse
        # of 1,000 records is the pump's main cost, so its records are taken from the raw JSON.
        streams_client.meta.events.register(
            "before-parse.dynamodb-streams.GetRecords", _keep_raw_records, unique_id="stream-pump-raw-records"
        )
        self.stream_arn = stream_arn
        self.invoke = invoke
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.filters = [event_filter.validate(f) for f in filters or []]
        self.report_item_failures = report_item_failures
        self.starting_position = starting_position
        self.max_retry_attempts = max_retry_attempts
        self.bisect_on_error = bisect_on_error
        self.tumbling_window_s = tumbling_window_s
        self.poll_interval_s = poll_interval_s
        self.name = name or stream_arn
        self._shards: dict[str, _Shard] = {}
        self._window_started: dict[str, int] = {}  # tumbling windows: shard -> its window's start
        self._window_state: dict[str, dict] = {}  # shard -> the state its function handed back
        self._next_discovery = 0.0
        self._lock = threading.Lock()  # poll_once and run may not step the shards at the same time
        # Counters (read them any time; they only grow, except iterator_age_ms).
        self.invocations = 0
        self.failed_invocations = 0  # batches not fully successful: error, invalid response, item failures
        self.records_delivered = 0  # records of successful invocations (each counted once per success)
        self.records_filtered = 0  # read and skipped by FilterCriteria
        self.records_discarded = 0  # given up after MaximumRetryAttempts
        self.iterator_age_ms = 0.0  # age of the last record of the last batch when it was sent
        self.last_error: Any = None  # the payload of the last failed invocation

    # -- driving ---------------------------------------------------------------------------------
    def prime(self) -> None:
        """Discover the shards and take their iterators now, as creating the mapping does: with
        LATEST, what is written from here on is delivered (else from the first poll on)."""
        with self._lock:
            self._discover()
            for shard in self._shards.values():
                if shard.iterator is None:
                    shard.iterator = self._iterator(shard)

    def poll_once(self, *, flush: bool = False) -> int:
        """Deliver what the stream holds now, batch after batch, and return the number of records
        delivered successfully. A shard whose batch fails stops there until the next call (which
        retries it at once: the backoff belongs to `run`). `flush` ignores the batching window."""
        with self._lock:
            return self._poll(flush=flush, honour_backoff=False)

    def run(self, stop_event: threading.Event) -> None:
        """Poll until `stop_event` is set: at once while there is work, else every poll interval."""
        while not stop_event.is_set():
            try:
                with self._lock:
                    delivered = self._poll(flush=False, honour_backoff=True)
            except Exception as exc:  # moto restarting, a network error: retried, as Lambda does
                print(f"[{self.name}] stream read failed: {exc!r}", file=sys.stderr, flush=True)
                delivered = 0
            if not delivered:
                stop_event.wait(self._idle_wait())

    def _idle_wait(self) -> float:
        now = time.monotonic()
        wait = self.poll_interval_s
        for shard in self._shards.values():
            if shard.retry_at > now:
                wait = min(wait, shard.retry_at - now)
            if shard.window_started is not None:
                wait = min(wait, max(0.0, shard.window_started + self.batching_window_s - now))
        return max(wait, 0.005)

    def _poll(self, *, flush: bool, honour_backoff: bool) -> int:
        if time.monotonic() >= self._next_discovery:
            self._discover()
        delivered = 0
        for shard in list(self._shards.values()):
            if self._ready(shard) and not (honour_backoff and shard.retry_at > time.monotonic()):
                delivered += self._pump_shard(shard, flush)
        return delivered

    # -- shards ----------------------------------------------------------------------------------
    def _discover(self) -> None:
        first = not self._shards
        found: list[dict] = []
        start: str | None = None
        while True:
            kwargs = {"ExclusiveStartShardId": start} if start else {}
            description = self.client.describe_stream(StreamArn=self.stream_arn, **kwargs)["StreamDescription"]
            found += description.get("Shards", [])
            start = description.get("LastEvaluatedShardId")
            if not start:
                break
        for shard in found:
            if shard["ShardId"] not in self._shards:
                # A shard born after the mapping started is read from its beginning, whatever LATEST says.
                position = self.starting_position if first else "TRIM_HORIZON"
                self._shards[shard["ShardId"]] = _Shard(shard["ShardId"], shard.get("ParentShardId"), position)
        # Shards read to the end are forgotten once DescribeStream no longer lists them (trimmed).
        listed = {s["ShardId"] for s in found}
        for shard_id in [i for i, s in self._shards.items() if s.ended and i not in listed]:
            del self._shards[shard_id]
        self._next_discovery = time.monotonic() + DISCOVERY_INTERVAL_S

    def _ready(self, shard: _Shard) -> bool:
        # A child shard waits until its parent has been read and delivered to the end (stream order).
        parent = self._shards.get(shard.parent_id or "")
        return not shard.ended and (parent is None or parent.ended)

    def _iterator(self, shard: _Shard) -> str:
        if shard.last_read is not None:
            kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_read}
        else:
            kwargs = {"ShardIteratorType": shard.initial_position}
        return self.client.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard.shard_id, **kwargs)[
            "ShardIterator"
        ]

    def _read(self, shard: _Shard) -> int:
        """One GetRecords into the shard's buffer; returns the number of records read."""
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        try:
            response = self.client.get_records(ShardIterator=shard.iterator, Limit=FETCH_LIMIT)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            shard.iterator = self._iterator(shard)  # iterators last 15 minutes; resume after the last read
            response = self.client.get_records(ShardIterator=shard.iterator, Limit=FETCH_LIMIT)
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.read_to_end = True  # a closed shard: no more records will ever come
        records = response.get("RawRecords", response.get("Records", []))
        for raw in records:
            record = lambda_record(raw, self.stream_arn)
            shard.last_read = record.sequence
            if event_filter.matches_any(record.event_record, self.filters):
                shard.buffer.append(record)
            else:
                self.records_filtered += 1
        return len(records)

    def _pump_shard(self, shard: _Shard, flush: bool) -> int:
        delivered = 0
        while True:
            # Read while the next batch is not full; the buffer stays under batch_size + FETCH_LIMIT.
            while len(shard.buffer) < self.batch_size and not shard.read_to_end and self._read(shard):
                pass
            if not shard.buffer:
                shard.window_started = None
                if shard.read_to_end:
                    self._next_discovery = 0.0  # its children (if listed yet) may start now
                return delivered
            if len(shard.buffer) < self.batch_size and not (flush or shard.read_to_end) and self.batching_window_s:
                now = time.monotonic()
                if shard.window_started is None:
                    shard.window_started = now
                if now - shard.window_started < self.batching_window_s:
                    return delivered  # wait for the batch to fill, up to the window
            shard.window_started = None
            done, go_on = self._deliver(shard)
            delivered += done
            if not go_on:
                return delivered

    def _deliver(self, shard: _Shard) -> tuple[int, bool]:
        """Invoke with the batch at the head of the buffer. Returns the records delivered successfully,
        and False when (part of) the batch failed and the shard must wait for its retry."""
        size = min(self.batch_size, shard.batch_limit or self.batch_size, len(shard.buffer))
        batch = [shard.buffer[i] for i in range(size)]
        event: dict[str, Any] = {"Records": [r.event_record for r in batch]}
        if self.tumbling_window_s:
            event.update(self._window(shard))
        self.iterator_age_ms = max(0.0, (time.time() - batch[-1].created) * 1000)
        ok, payload = self.invoke(event)
        self.invocations += 1
        succeeded = self._succeeded(ok, payload, batch, shard.shard_id)
        for _ in range(succeeded):
            shard.buffer.popleft()
        self.records_delivered += succeeded
        if succeeded == len(batch):
            shard.attempts, shard.batch_limit = 0, 0
            return succeeded, True
        self.failed_invocations += 1
        self.last_error = payload
        shard.attempts = 1 if succeeded else shard.attempts + 1  # a checkpoint that moved starts a new batch
        if 0 <= self.max_retry_attempts < shard.attempts:
            for _ in range(len(batch) - succeeded):  # given up: an OnFailure destination would get them
                shard.buffer.popleft()
            self.records_discarded += len(batch) - succeeded
            shard.attempts, shard.batch_limit = 0, 0
            return succeeded, True
        if not ok and self.bisect_on_error and len(batch) > 1:
            shard.batch_limit = len(batch) // 2
        shard.retry_at = time.monotonic() + min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (shard.attempts - 1))
        return succeeded, False

    def _window(self, shard: _Shard) -> dict[str, Any]:
        """What Lambda adds to the events of a mapping with a tumbling window: the shard, the window
        and the state the function handed back last in that window (a new window starts empty). The
        window's final invoke (isFinalInvokeForWindow) is not emulated."""
        size = self.tumbling_window_s
        start = int(time.time() // size * size)
        if self._window_started.get(shard.shard_id) != start:
            self._window_started[shard.shard_id] = start
            self._window_state[shard.shard_id] = {}
        iso = "%Y-%m-%dT%H:%M:%SZ"
        return {
            "shardId": shard.shard_id,
            "eventSourceARN": self.stream_arn,
            "window": {
                "start": time.strftime(iso, time.gmtime(start)),
                "end": time.strftime(iso, time.gmtime(start + size)),
            },
            "state": dict(self._window_state.get(shard.shard_id, {})),
            "isFinalInvokeForWindow": False,
            "isWindowTerminatedEarly": False,
        }

    def _succeeded(self, ok: bool, payload: Any, batch: list[_Record], shard_id: str) -> int:
        """How many records at the head of the batch count as processed (all, none, or up to the
        checkpoint a ReportBatchItemFailures response names)."""
        if not ok:
            return 0
        if self.tumbling_window_s:
            # A windowed mapping needs the state back: an answer without it is a failed invocation.
            if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
                return 0
            self._window_state[shard_id] = payload["state"]
        if not self.report_item_failures or not isinstance(payload, dict):
            return len(batch)
        failures = payload.get("batchItemFailures")
        if not failures:
            return len(batch)  # an empty or null list is a complete success
        positions = {r.sequence: i for i, r in enumerate(batch)}
        reported = []
        for failure in failures if isinstance(failures, list) else [None]:
            identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if identifier not in positions:
                return 0  # empty, null, or not a record of the batch: the whole batch failed
            reported.append(positions[identifier])
        return min(reported)  # checkpoint before the lowest reported sequence number

    def describe(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "failed_invocations": self.failed_invocations,
            "records_delivered": self.records_delivered,
            "records_filtered": self.records_filtered,
            "records_discarded": self.records_discarded,
            "iterator_age_ms": round(self.iterator_age_ms, 1),
            "shards": len(self._shards),
            "buffered": sum(len(s.buffer) for s in self._shards.values()),
        }


def streams_client(**kwargs: Any) -> Any:
    """A boto3 `dynamodbstreams` client moto can answer. botocore sends stream calls that name an ARN
    to an account-specific host (`<account>.streams-ddb.<region>...`) that `mock_aws` does not route;
    the regional endpoint is the same service."""
    import boto3
    from botocore.config import Config

    config = Config(account_id_endpoint_mode="disabled")
    if "config" in kwargs:
        config = kwargs.pop("config").merge(config)
    return boto3.client("dynamodbstreams", config=config, **kwargs)


def _keep_raw_records(response_dict: dict, customized_response_dict: dict, **_: Any) -> None:
    """botocore hook: hand GetRecords' records over as sent (`RawRecords`), and let botocore parse
    only the rest of the body."""
    if response_dict.get("status_code", 500) >= 300:
        return
    body = json.loads(response_dict["body"])
    customized_response_dict["RawRecords"] = body.get("Records", [])
    body["Records"] = []
    response_dict["body"] = json.dumps(body).encode()


def lambda_record(raw: dict, stream_arn: str) -> _Record:
    """A GetRecords record (as sent, or as botocore parses it) in the shape Lambda gives the function."""
    data = dict(raw["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    epoch = created.timestamp() if isinstance(created, datetime) else float(created or time.time())
    data["ApproximateCreationDateTime"] = int(epoch)  # whole seconds, rounded down, as the stream has it
    if isinstance(created, datetime):  # parsed by botocore: binary values were decoded to bytes
        for image in ("Keys", "NewImage", "OldImage"):
            if image in data:
                data[image] = {name: _wire_value(value) for name, value in data[image].items()}
    record = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": raw.get("eventSource", "aws:dynamodb"),
        "awsRegion": raw.get("awsRegion", stream_arn.split(":")[3]),
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # TTL deletions name the DynamoDB service
        record["userIdentity"] = raw["userIdentity"]
    return _Record(data["SequenceNumber"], epoch, record)


def _wire_value(value: dict) -> dict:
    """boto3 decodes binary attributes to bytes; Lambda's JSON event carries them base64-encoded."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(inner).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in inner]}
    if kind == "M":
        return {"M": {k: _wire_value(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_wire_value(v) for v in inner]}
    return value
