"""What the measures stand on: images over HTTP, API call counters, and the handlers in-process on
moto with the AWS limits model and the table's stream pumped into count_results. Local stacks, the
baseline checkout, timed jobs and pollers are in `stacks`."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import boto3

from benchkit import ROOT
from devkit.images import UniformImageHost as ImageHost
from devkit.lambda_runtime import LambdaContext, load_function, load_handler
from devkit.stream_sources import StackStreams, in_process_invoker
from devkit.streams import streams_client
from devkit.template import FunctionSpec, Stack
from local_stack import moto_patches
from local_stack.dynamodb_limits_adapters import InProcessLimits

__all__ = ["ROOT", "ImageHost"]

EXPECTED_MAX_OF_TEN_SLEEPS = 0.1 + 0.3 * 10 / 11  # E[max of 10 uniform(0.1, 0.4)] = 0.3727 s
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def log(message: str) -> None:
    """Progress on stderr (stdout is the table)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ideal_seconds(images: int, concurrency: int) -> float:
    """`images` at `concurrency` 10-image batches in flight, each as long as its longest sleep."""
    return images / (concurrency * 10 / EXPECTED_MAX_OF_TEN_SLEEPS)


class CallCounter:
    """botocore `before-call` hook: API requests by (service, operation)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def __call__(self, event_name: str, **_kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[(service, operation)] += 1

    def dynamodb_writes(self) -> int:
        return sum(n for (s, op), n in self.calls.items() if s == "dynamodb" and op in WRITE_OPERATIONS)

    def service(self, name: str) -> int:
        return sum(n for (s, _), n in self.calls.items() if s == name)

    def reset(self) -> None:
        self.calls.clear()


@contextlib.contextmanager
def saved_environment():
    """The environment set for in-process handlers is put back afterwards (local stacks started
    later inherit this process's environment)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Consumption:
    """WCU/RCU the limits model saw, summed over the table and its indexes."""

    table_wcu: float = 0.0
    index_wcu: float = 0.0
    rcu: float = 0.0

    @property
    def wcu(self) -> float:
        return self.table_wcu + self.index_wcu

    def __add__(self, other: Consumption) -> Consumption:
        return Consumption(self.table_wcu + other.table_wcu, self.index_wcu + other.index_wcu, self.rcu + other.rcu)

    def __sub__(self, other: Consumption) -> Consumption:
        return Consumption(self.table_wcu - other.table_wcu, self.index_wcu - other.index_wcu, self.rcu - other.rcu)

    @classmethod
    def of(cls, snapshot: dict) -> Consumption:
        out = cls()
        for table in snapshot["consumed"].values():
            out.table_wcu += table["write_units"]
            out.rcu += table["read_units"]
            for index in table["indexes"].values():
                out.index_wcu += index["write_units"]
                out.rcu += index["read_units"]
        return out


@dataclass
class StreamInvocation:
    seconds: float  # the handler's own time
    records: int


class InProcessApp:
    """submit, process_image and count_results in this process against moto (`mock_aws`), with the
    AWS limits model (`InProcessLimits`) on boto3's default session, which the handlers' clients come
    from, and the table's stream delivered to the stream-triggered functions as their event source
    mappings would (the template's batch size and batching window, in real time).

    The benchmark's own queue calls (what Lambda's SQS poller does) go through a session of their own:
    not counted, not limited."""

    def __init__(self) -> None:
        self.counter = CallCounter()
        self.limits = InProcessLimits()
        self.stream_invocations: list[StreamInvocation] = []
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> InProcessApp:
        from moto import mock_aws

        self._exit.enter_context(saved_environment())
        # The handlers' logs and metrics (EMF on stdout) would bury the table.
        self._exit.enter_context(contextlib.redirect_stdout(open(os.devnull, "w")))
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
                "POWERTOOLS_METRICS_NAMESPACE": "RetailPulseBench",
            }
        )
        os.environ.pop("AWS_ENDPOINT_URL", None)
        moto_patches.install()  # moto's whole-table copy per transaction is the emulator's cost, not ours
        self._exit.enter_context(mock_aws())
        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        session.events.register("before-call", self.counter)
        self.limits.attach(session)  # before any client: clients copy their session's hooks
        own = boto3.session.Session()
        self.sqs = own.client("sqs")
        self.dynamodb = own.client("dynamodb")
        self.stack = Stack(prefix="bench").provision(
            session.client("dynamodb"), session.client("sqs"), session.client("s3"), session.client("sns")
        )
        self.specs = self.stack.functions()
        for spec in self.specs.values():
            os.environ.update(spec.environment)
        # moto in-process is not thread-safe (its stream records race); the counts are the same.
        os.environ["ENQUEUE_CONCURRENCY"] = "1"
        os.environ["RESULT_WRITE_CONCURRENCY"] = "1"
        os.environ["ALLOW_PRIVATE_IMAGE_HOSTS"] = "true"  # the images come from 127.0.0.1
        self.submit_fn = load_function("submit", prefix="bench")
        self.process_fn = load_function("process_image", prefix="bench")
        self.streams = StackStreams(self.stack, streams_client(), self._stream_invoker)
        self.queue_url = self.stack.refs["ImageQueue"]
        self.queue_arn = self.stack.attrs[("ImageQueue", "Arn")]
        self.limits.limits.reset()
        self.counter.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()

    def _stream_invoker(self, spec: FunctionSpec):
        handler = load_handler(spec, prefix="bench")

        def timed(event: dict, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                self.stream_invocations.append(StreamInvocation(time.perf_counter() - started, len(event["Records"])))

        return in_process_invoker(timed)

    def memory_mb(self, logical_id: str) -> int:
        return self.specs[logical_id].memory

    def consumed(self) -> Consumption:
        return Consumption.of(self.limits.limits.snapshot())

    def submit(self, visits: list[dict]) -> tuple[str, float]:
        event = json.loads((ROOT / "tests" / "events" / "api_gateway_rest_proxy.json").read_text())
        event["body"] = json.dumps({"count": len(visits), "visits": visits})
        started = time.perf_counter()
        response = self.submit_fn.lambda_handler(event, LambdaContext())
        elapsed = time.perf_counter() - started
        assert response["statusCode"] == 201, response["body"]
        return json.loads(response["body"])["job_id"], elapsed

    def receive(self) -> list[dict]:
        return self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])

    def process(self, messages: list[dict]) -> float:
        """One process_image invocation on these messages (all must succeed); deleted afterwards as
        the event source mapping does. Returns the handler's time."""
        records = [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": self.queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
        started = time.perf_counter()
        result = self.process_fn.lambda_handler({"Records": records}, LambdaContext())
        elapsed = time.perf_counter() - started
        assert not result["batchItemFailures"], result
        self.sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        return elapsed

    def pump(self, *, flush: bool) -> int:
        """The stream's records to their functions: without `flush`, only batches that are full or
        whose batching window has run out (as the mapping, in real time); with it, everything."""
        if flush:
            return self.streams.pump()
        return sum(p.poll_once(flush=False) for pumps in self.streams.pumps.values() for p in pumps)

    def stream_failures(self) -> int:
        return sum(p.failed_invocations for pumps in self.streams.pumps.values() for p in pumps)

    def job(self, job_id: str) -> dict:
        """The job item (read outside the limits model and the counters)."""
        item = self.dynamodb.get_item(
            TableName=self.stack.refs["JobsTable"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
        )["Item"]
        return {k: next(iter(v.values())) for k, v in item.items()}
