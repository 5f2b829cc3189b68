"""The AWS of the scale model, in this process: moto (`mock_aws`) behind the DynamoDB limits model
(`InProcessLimits`), the local stack's own SQS (`local_stack.sqs`: visibility timeouts, redrive after
maxReceiveCount, fair message groups) reached through boto3, and the table's stream split into the
shards AWS would have.

- Time: the SQS queues run on the model's clock (`ModelClock.now`, seconds of modelled time), so
  every visibility timeout, ChangeMessageVisibility and redelivery delay is in modelled seconds;
  botocore's own retry backoff is stretched by F like every other pause.
- Speed: moto serialises each DynamoDB answer through botocore's service model (about half of
  its cost per request); item-level answers are written as JSON directly instead (the same wire
  JSON), and the class-method listing moto redoes per request is cached. Nothing else changes.
- Stream shards: moto gives a table one stream shard; DynamoDB gives one per table partition, each
  read by its own CountResults invocation. `ShardedStream` reads moto's shard and routes each record
  by its partition key to one of `shards` virtual shards (records of one item stay in order in one
  shard, as on AWS); each virtual shard is a `StreamPump` of its own.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime as dt
import functools
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from local_stack import moto_patches
from local_stack.dynamodb_limits import DynamoDBLimits
from local_stack.dynamodb_limits_adapters import InProcessLimits
from local_stack.sqs import Queue, SqsError, SqsService

SQS_BASE_URL = "https://sqs.us-east-1.amazonaws.com"
FAST_ANSWERS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem"}
FAST_ANSWERS |= {"TransactWriteItems", "TransactGetItems", "Query", "Scan"}
_installed: set[str] = set()


def _wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def install_moto_speedups() -> None:
    """moto as the local stack runs it (moto_patches), plus the two shortcuts above (once per process)."""
    moto_patches.install()
    if "speedups" in _installed:
        return
    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoResult

    responses.method_names_from_class = functools.cache(utils.method_names_from_class)
    serialise = responses.ActionResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if (
            isinstance(self, DynamoResult)
            and isinstance(self.result, dict)
            and context.operation_model.name in FAST_ANSWERS
        ):
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(self.result, default=_wire)
        return serialise(self, context)

    responses.ActionResult.execute_result = execute_result
    _installed.add("speedups")


class ScaledBackoff:
    """botocore's standard-mode retry pauses x F while installed (a context manager)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __enter__(self) -> ScaledBackoff:
        from botocore.retries.standard import ExponentialBackoff

        self._original = ExponentialBackoff.delay_amount
        factor, original = self.factor, self._original
        ExponentialBackoff.delay_amount = lambda backoff, context: original(backoff, context) * factor
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.retries.standard import ExponentialBackoff

        ExponentialBackoff.delay_amount = self._original


class ModelSqs:
    """local_stack's SQS answering boto3 in this process; queues on the model's clock. Remembers the
    receipt handles whose visibility was changed (ChangeMessageVisibility)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.service = SqsService(SQS_BASE_URL)
        self.clock = clock
        self._shortened: set[str] = set()
        self._lock = threading.Lock()
        create = self.service.create_queue

        def create_queue(name: str, attributes: dict[str, str]) -> Queue:
            queue = create(name, attributes)
            if getattr(queue, "_model_clock", None) is None:
                queue.clock = queue._model_clock = clock
                change = queue.change_visibility

                def change_visibility(receipt: str, timeout: float, _change=change) -> None:
                    _change(receipt, timeout)
                    with self._lock:
                        self._shortened.add(receipt)

                queue.change_visibility = change_visibility
            return queue

        self.service.create_queue = create_queue

    def queue(self, url: str) -> Queue:
        return self.service.queue_by_url(url)

    def shortened(self, receipt: str) -> bool:
        with self._lock:
            return receipt in self._shortened

    def answer(self, request: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        body = request.body or b"{}"
        params = json.loads(body.decode() if isinstance(body, bytes) else body)
        try:
            status, data = 200, self.service.handle(target.split(".", 1)[1], params)
        except SqsError as exc:
            status, data = exc.status, {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
        payload = json.dumps(data).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "model"}
        return AWSResponse(request.url, status, headers, MockRawResponse(payload))


class ModelAws:
    """Routes the default boto3 session's requests: SQS to `ModelSqs`, everything else through the
    DynamoDB limits model to moto. Attach before any client is created."""

    HANDLER_ID = "scale-model-aws"

    def __init__(self, limits: DynamoDBLimits, sqs: ModelSqs) -> None:
        self.limits = InProcessLimits(limits)
        self.sqs = sqs
        self.requests: collections.Counter[str] = collections.Counter()  # by service (real requests)
        self.sqs_requests: collections.Counter[str] = collections.Counter()  # by operation

    @property
    def moto_lock(self) -> threading.RLock:
        """Held by every DynamoDB request (moto in-process is not thread-safe): take it to read moto."""
        return self.limits._lock

    def attach(self, session: Any) -> None:
        self.limits.attach(session)
        events = session._session.get_component("event_emitter")
        events.unregister("before-send", unique_id=InProcessLimits.HANDLER_ID)
        events.register("before-send", self._before_send, unique_id=self.HANDLER_ID)

    def _before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        service = event_name.split(".")[1] if event_name.count(".") >= 1 else ""
        self.requests[service] += 1
        if service == "sqs":
            self.sqs_requests[event_name.rsplit(".", maxsplit=1)[-1]] += 1
            return self.sqs.answer(request)
        if event_name.startswith("before-send.dynamodb-streams"):
            with self.moto_lock:  # moto's stream shard is also written by table writes
                return self.limits._before_send(request, event_name, **kwargs)
        return self.limits._before_send(request, event_name, **kwargs)


class ShardedStream:
    """moto's one stream shard as `shards` virtual shards (by partition key), each handed to its own
    StreamPump through `view(i)`: a dynamodbstreams client of one shard."""

    def __init__(self, client: Any, stream_arn: str, shards: int, min_fill_interval_s: float = 0.0) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.shards = shards
        self.buffers: list[deque] = [deque() for _ in range(shards)]
        self._lock = threading.Lock()
        self._iterator: str | None = None
        self.records_read = 0
        self.last_sequence: int | None = None  # of the last record read from moto
        # Lambda polls a shard about 4 times a second: reading moto more often only costs.
        self.min_fill_interval_s = min_fill_interval_s
        self._filled_at = float("-inf")

    def shard_of(self, pk: str) -> int:
        return int.from_bytes(hashlib.sha256(pk.encode()).digest()[:8], "big") % self.shards

    def _fill(self) -> None:
        if time.monotonic() - self._filled_at < self.min_fill_interval_s:
            return
        self._filled_at = time.monotonic()
        if self._iterator is None:
            shard = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]
            self._iterator = self.client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        while True:
            response = self.client.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = response.get("NextShardIterator") or self._iterator
            records = response.get("RawRecords", response.get("Records", []))
            for raw in records:
                pk = raw["dynamodb"]["Keys"]["pk"]["S"]
                self.buffers[self.shard_of(pk)].append(raw)
                self.last_sequence = int(raw["dynamodb"]["SequenceNumber"])
            self.records_read += len(records)
            if len(records) < 1000:
                return

    def take(self, shard: int, limit: int) -> list[dict]:
        with self._lock:
            self._fill()
            buffer = self.buffers[shard]
            return [buffer.popleft() for _ in range(min(limit, len(buffer)))]

    def pending(self) -> int:
        with self._lock:
            return sum(len(b) for b in self.buffers)

    def view(self, shard: int) -> _ShardView:
        return _ShardView(self, shard)


class _Events:
    def __init__(self, client: Any) -> None:
        self._client = client

    def register(self, *args: Any, **kwargs: Any) -> None:
        # The pump's raw-records hook belongs on the client that really reads moto.
        with contextlib.suppress(ValueError):
            self._client.meta.events.register(*args, **kwargs)


class _Meta:
    def __init__(self, client: Any) -> None:
        self.events = _Events(client)


class _ShardView:
    """DescribeStream / GetShardIterator / GetRecords of one virtual shard (what StreamPump calls)."""

    def __init__(self, stream: ShardedStream, shard: int) -> None:
        self.stream = stream
        self.shard = shard
        self.shard_id = f"shardId-{shard:05d}-model"
        self.meta = _Meta(stream.client)

    def describe_stream(self, StreamArn: str, **_: Any) -> dict:
        return {"StreamDescription": {"Shards": [{"ShardId": self.shard_id}]}}

    def get_shard_iterator(self, **_: Any) -> dict:
        return {"ShardIterator": self.shard_id}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict:
        return {"Records": self.stream.take(self.shard, Limit), "NextShardIterator": self.shard_id}
