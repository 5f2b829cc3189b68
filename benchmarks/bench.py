"""`make bench`: the product's speed and cost targets as measured figures (ratios against the ideal).

Part 1 runs the real handlers in-process against moto and counts every AWS API request through
botocore's event hooks. Part 2 drives the local stack (a subprocess) over HTTP with images from a
local HTTP server. Prints one table and writes it to BENCHMARKS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

import boto3  # noqa: E402

from devkit.images import UniformImageHost as ImageHost  # noqa: E402
from devkit.lambda_runtime import LambdaContext, load_function  # noqa: E402
from devkit.template import Stack  # noqa: E402
from local_stack import moto_patches  # noqa: E402
from local_stack.runner import start_local_stack  # noqa: E402

EXPECTED_MAX_OF_TEN_SLEEPS = 0.1 + 0.3 * 10 / 11  # E[max of 10 uniform(0.1, 0.4)] = 0.3727 s
KEPT_SECTION = "## Cold start (INIT)"
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


@dataclass
class Row:
    metric: str
    measured: float
    target: float
    unit: str
    lower_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.measured / self.target if self.lower_is_better else self.target / self.measured

    @property
    def met(self) -> bool:
        return self.measured <= self.target if self.lower_is_better else self.measured >= self.target


class CallCounter:
    def __init__(self) -> None:
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def __call__(self, event_name: str, **_kwargs) -> None:
        _, service, operation = event_name.split(".", 2)
        self.calls[(service, operation)] += 1

    def dynamodb_writes(self) -> int:
        return sum(n for (s, op), n in self.calls.items() if s == "dynamodb" and op in WRITE_OPERATIONS)

    def service(self, name: str) -> int:
        return sum(n for (s, _), n in self.calls.items() if s == name)

    def reset(self) -> None:
        self.calls.clear()


def in_process(host: ImageHost, images: int, batches_timed: int) -> tuple[list[Row], float]:
    """See `_in_process`; the environment it sets for the handlers is put back afterwards (the local
    stack started later inherits this process's environment)."""
    saved = dict(os.environ)
    try:
        return _in_process(host, images, batches_timed)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _in_process(host: ImageHost, images: int, batches_timed: int) -> tuple[list[Row], float]:
    """Handlers against moto: API requests per image, and handler time per batch vs its longest sleep.

    Returns the rows and the median handler time of a 10-image batch (for the cost model)."""
    from moto import mock_aws

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
    counter = CallCounter()
    rows = []
    moto_patches.install()  # moto's whole-table copy per transaction is the emulator's cost, not ours
    with mock_aws():
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call", counter)
        sqs = boto3.client("sqs")
        stack = Stack(prefix="bench").provision(boto3.client("dynamodb"), sqs, boto3.client("s3"), boto3.client("sns"))
        for spec in stack.functions().values():
            os.environ.update(spec.environment)
        # moto in-process is not thread-safe (its stream records race); the counts are the same.
        os.environ["ENQUEUE_CONCURRENCY"] = "1"
        os.environ["RESULT_WRITE_CONCURRENCY"] = "1"
        os.environ["ALLOW_PRIVATE_IMAGE_HOSTS"] = "true"  # the images come from 127.0.0.1
        submit, process = load_function("submit"), load_function("process_image")
        from retail_pulse.logic import process as process_logic

        counter.reset()
        event = json.loads((ROOT / "tests" / "events" / "api_gateway_rest_proxy.json").read_text())
        event["body"] = json.dumps({"count": images // 10, "visits": host.visits(images)})
        response = submit.lambda_handler(event, LambdaContext())
        assert response["statusCode"] == 201, response["body"]
        submit_calls = CallCounter()
        submit_calls.calls = counter.calls.copy()

        # Process every message in batches of 10 with the real 0.1-0.4 s delay on the timed batches.
        recorded_sleeps: list[float] = []

        real_random = process_logic.random

        class RecordingRandom:
            """Stands in for the `random` module inside the processing logic to see each sleep."""

            @staticmethod
            def uniform(a: float, b: float) -> float:
                value = real_random.uniform(a, b)
                recorded_sleeps.append(value)
                return value

        process_logic.random = RecordingRandom
        queue_url = stack.refs["ImageQueue"]
        ratios, handler_times = [], []
        counter.reset()
        batches = 0
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            timed = batches < batches_timed
            os.environ["PROCESSING_DELAY_MAX_S"] = "0.4" if timed else "0.0"
            os.environ["PROCESSING_DELAY_MIN_S"] = "0.1" if timed else "0.0"
            process.kit.clear_caches()
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": stack.attrs[("ImageQueue", "Arn")],
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
            recorded_sleeps.clear()
            started = time.perf_counter()
            result = process.lambda_handler({"Records": records}, LambdaContext())
            elapsed = time.perf_counter() - started
            assert not result["batchItemFailures"], result
            batches += 1
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            if timed and recorded_sleeps:
                handler_times.append(elapsed)
                ratios.append(elapsed / max(recorded_sleeps))
        process_logic.random = real_random
        processing_writes = counter.dynamodb_writes()

    rows.append(
        Row(
            "process_image: handler time / max(sleep), median of 10-image batches",
            statistics.median(ratios),
            1.3,
            "x",
            note=f"{len(ratios)} batches, median handler {statistics.median(handler_times) * 1000:.0f} ms",
        )
    )
    rows.append(Row("DynamoDB write requests per image, processing", processing_writes / images, 0.15, "req/img"))
    rows.append(
        Row("DynamoDB write requests per image, submit", submit_calls.dynamodb_writes() / images, 0.05, "req/img")
    )
    rows.append(Row("SQS requests per image, submit", submit_calls.service("sqs") / images, 0.11, "req/img"))
    return rows, statistics.median(handler_times)


def timed_submit(stack, visits) -> tuple[str, float]:
    started = time.perf_counter()
    job_id = stack.submit(visits)
    return job_id, time.perf_counter() - started


def local_stack_scale(host: ImageHost, log_dir: Path, big: int) -> list[Row]:
    """Submit latency, status latency of a big job, and a small job's wait behind it (fair queues)."""
    rows = []
    stack = start_local_stack(log_dir, "--warm", "20")
    try:
        _, t5k = timed_submit(stack, host.visits(5000, store="RP00002"))
        rows.append(Row("submit 5,000 images: accepted in", t5k, 3.0, "s"))
        big_job, tbig = timed_submit(stack, host.visits(big, per_visit=100, store="RP00003"))
        rows.append(Row(f"submit {big:,} images: accepted in", tbig, 25.0, "s"))
        over = stack.post("/api/submit", {"count": 501, "visits": host.visits(50_001, per_visit=100)})
        rows.append(
            Row("submit 50,001 images: answered 413", float(over.status_code), 413.0, "status", note=over.text[:80])
        )
        latencies = []
        for _ in range(50):
            started = time.perf_counter()
            assert stack.get("/api/status", jobid=big_job).status_code == 200
            latencies.append(time.perf_counter() - started)
        rows.append(Row(f"status of a {big:,}-image job, median", statistics.median(latencies) * 1000, 50.0, "ms"))
        small, _ = timed_submit(stack, host.visits(50, store="RP00004"))
        started = time.perf_counter()
        stack.wait(small, timeout=120, interval=0.05)
        rows.append(
            Row(
                f"50-image job behind a running {big:,}-image job: done in",
                time.perf_counter() - started,
                10.0,
                "s",
                note="fair queues: MessageGroupId = job id",
            )
        )
    finally:
        stack.stop()
    return rows


def local_stack_throughput(host: ImageHost, log_dir: Path, images: int, concurrency: int) -> tuple[float, float]:
    """Wall time of an `images`-image job with the real delay at `concurrency` batches in flight."""
    # Workers warm before the clock starts, as in a service that has been running.
    stack = start_local_stack(log_dir, "--max-concurrency", str(concurrency), "--warm", str(concurrency))
    try:
        started = time.perf_counter()
        job_id = stack.submit(host.visits(images, store="RP00005"))
        job = stack.wait(job_id, timeout=600, interval=0.1)
        elapsed = time.perf_counter() - started
        assert job["status"] == "completed", job
    finally:
        stack.stop()
    ideal = images / (concurrency * 10 / EXPECTED_MAX_OF_TEN_SLEEPS)
    return elapsed, ideal


def cost_per_thousand(median_batch_seconds: float) -> list[str]:
    """A cost model from the measured figures (us-east-1 on-demand list prices, 2026)."""
    lambda_gb_s = 0.5 * median_batch_seconds * 100  # 512 MB, 100 batches per 1,000 images
    lambda_cost = lambda_gb_s * 0.0000166667 + 100 * 0.20 / 1e6
    sqs_requests = 100 + 100 + 100  # SendMessageBatch, ReceiveMessage (by the poller), DeleteMessageBatch
    sqs_cost = sqs_requests * 0.40 / 1e6
    # Per 10-image batch, in one transaction (2 WRU per item of <= 1 KB): 10 results, the job counter,
    # an area and a store report shard; plus each result's two visit-index GSI entries (1 WRU each).
    wru = 100 * ((10 + 3) * 2 + 10 * 2)
    dynamodb_cost = wru * 0.625 / 1e6 + 200 * 0.125 / 1e6
    total = lambda_cost + sqs_cost + dynamodb_cost
    return [
        f"- Lambda: {lambda_gb_s:.1f} GB-s (512 MB x {median_batch_seconds * 1000:.0f} ms median per 10-image batch) "
        f"= ${lambda_cost:.5f}",
        f"- SQS: ~{sqs_requests} requests = ${sqs_cost:.5f}",
        f"- DynamoDB: ~{wru} WRU (+ reads) = ${dynamodb_cost:.5f}",
        f"- **Total ≈ ${total:.4f} per 1,000 images** (excluding data transfer and API Gateway: $3.50/M requests)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller jobs (a smoke run, not the targets)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--concurrency", type=int, nargs="*", default=[5, 10, 20])
    args = parser.parse_args()
    big = 5_000 if args.quick else 50_000
    e2e_images = 500 if args.quick else 5_000
    host = ImageHost()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    rows, median_batch_seconds = in_process(
        host, images=200 if args.quick else 1000, batches_timed=20 if args.quick else 40
    )
    rows += local_stack_scale(host, log_dir, big)
    extra = []
    for concurrency in args.concurrency:
        elapsed, ideal = local_stack_throughput(host, log_dir, e2e_images, concurrency)
        line = (
            f"{e2e_images:,} images, real 0.1-0.4 s delay, L = {concurrency}: {elapsed:.1f} s "
            f"(ideal {ideal:.1f} s = {e2e_images} / ({concurrency} x 10 / {EXPECTED_MAX_OF_TEN_SLEEPS:.3f} s))"
        )
        print(line, flush=True)
        if concurrency == 5:
            rows.append(
                Row(
                    f"end to end, {e2e_images:,} images, L = 5: throughput vs ideal",
                    ideal / elapsed,
                    0.85,
                    "of ideal",
                    lower_is_better=False,
                    note=f"{elapsed:.1f} s, ideal {ideal:.1f} s",
                )
            )
        else:
            extra.append(f"- {line}: {ideal / elapsed:.2f} of ideal")

    header = "| metric | measured | target | ratio | met | note |\n| --- | --- | --- | --- | --- | --- |"
    lines = [
        f"| {r.metric} | {r.measured:.3f} {r.unit} | {'>=' if not r.lower_is_better else '<='} {r.target:g} "
        f"| {r.ratio:.2f} | {'yes' if r.met else 'NO'} | {r.note} |"
        for r in rows
    ]
    table = "\n".join([header, *lines])
    print(table)
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    report = [
        "# Benchmarks",
        "",
        f"`make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine}."
        + (" (quick run: smaller jobs)" if args.quick else ""),
        "Ratio: measured / target (for throughput: target / measured); <= 1 meets the target.",
        "",
        table,
        "",
        "Other concurrency levels (batches in flight):",
        "",
        *extra,
        "",
        "## Cost per 1,000 images (model from the figures above)",
        "",
        *cost_per_thousand(median_batch_seconds),
        "",
    ]
    # Sections other tools write (benchmarks/cold_start.py: "Cold start (INIT)") are kept.
    output = Path(args.output)
    previous = output.read_text() if output.exists() else ""
    kept = previous[previous.index(KEPT_SECTION) :] if KEPT_SECTION in previous else ""
    output.write_text("\n".join(report) + ("\n" + kept if kept else ""))
    print(f"written to {args.output}")
    with contextlib.suppress(OSError):
        for f in log_dir.iterdir():
            f.unlink()
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
