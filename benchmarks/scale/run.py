"""One run of the scale model: a scenario, a write path, a concurrency and a time scale F.

Provision the template (today's table or the current one) on moto behind the limits model, submit
the scenario's jobs with submit's own logic (logic/submit.py: job items, one message per image),
run the event sources until every job has ended, then read back (outside the limits model) what
every job, result and report counter says. Returns the raw figures; report.py turns them into tables.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from devkit import streams as devkit_streams
from devkit.images import make_image
from devkit.lambda_runtime import LambdaContext
from devkit.streams import StreamPump, streams_client
from devkit.template import Stack
from local_stack.dynamodb_limits import DynamoDBLimits, LimitsConfig

from .aws import ModelAws, ModelSqs, ScaledBackoff, ShardedStream, install_moto_speedups
from .harness import FunctionStats, ModelClock, RunLimits, Runner, SqsEventSource, StreamConsumers
from .paths import ModelDownloader, NewPath, OldPath
from .scenarios import DOWNLOAD_LATENCY_S, MODELLED_LIMIT_S, RunSpec, job_bodies
from .verify import Verified, verify_new, verify_old

ACCOUNT, REGION = "123456789012", "us-east-1"
SWITCH_INTERVAL_S = 0.5
ENV = {
    "AWS_ACCESS_KEY_ID": "scale",
    "AWS_SECRET_ACCESS_KEY": "scale",
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_SERVICE_NAME": "retail-pulse",
    "POWERTOOLS_METRICS_NAMESPACE": "RetailPulseScale",
    "JOB_EVENTS_TOPIC_ARN": "",  # no topic: notices are bookkept on the job item, nothing is published
    "CALLBACK_SIGNING_SECRET_ARN": "",
    "MAX_RECEIVE_COUNT": "5",
    "PROCESS_CONCURRENCY": "10",
}


@dataclass
class RunResult:
    spec: RunSpec
    outcome: str
    wall_s: float
    makespan_s: float  # modelled: start to the last job's end
    completions: list[float]  # modelled seconds from start to each job's end
    steady_rate: float  # images/s between the 10th and 90th percentile of results measured
    limits: dict  # the limits model's snapshot (refusals, WCU/RCU, hottest partitions)
    attempts: dict[tuple[str, ...], int]
    functions: dict[str, FunctionStats]
    queues: dict[str, Any]  # name -> QueueStats
    sqs_requests: dict[str, int]
    dead_letters: dict[str, int]
    verified: Verified
    dynamodb_requests: int  # requests that reached moto through the limits model (real, this run)
    errors: collections.Counter = field(default_factory=collections.Counter)


class ErrorLog(logging.Handler):
    """The handlers' ERROR records, counted by message (Powertools' own stdout handler is removed)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[str(record.msg)[:120]] += 1


class ModelImageQueue:
    """submit's queue port, straight into the modelled SQS queue (one message per image, group = job)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.batches = 0

    def send(self, tasks: list) -> None:
        from retail_pulse.domain.messages import task_to_message

        for task in tasks:
            self.queue.send(task_to_message(task), task.job_id)
        self.batches += -(-len(tasks) // 10)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _scaled_stream_backoff(factor: float):
    saved = devkit_streams.BACKOFF_BASE_S, devkit_streams.BACKOFF_MAX_S
    devkit_streams.BACKOFF_BASE_S, devkit_streams.BACKOFF_MAX_S = saved[0] * factor, saved[1] * factor
    try:
        yield
    finally:
        devkit_streams.BACKOFF_BASE_S, devkit_streams.BACKOFF_MAX_S = saved


def run_one(spec: RunSpec, store_master: Path, wall_limit_s: float = 1800.0) -> RunResult:
    from moto import mock_aws

    install_moto_speedups()
    factor = spec.factor
    path = NewPath() if spec.path == "new" else OldPath()
    env = {
        **ENV,
        "PROCESSING_DELAY_MIN_S": str(0.1 * factor),
        "PROCESSING_DELAY_MAX_S": str(0.4 * factor),
        "STORE_MASTER_URI": str(store_master),
    }
    old_stack_size = threading.stack_size(512 * 1024)
    # Up to L x 10 image threads wait for the interpreter at once, and each waiting thread wakes every
    # switch interval to ask for it: at the default 5 ms and L = 1,000 that is ~2 million wake-ups a
    # second, and the process spent 97 % of its time in the kernel (measured: 2.1 s system vs 0.01 s
    # user per second, a 50,000-image run that never ended). Threads here hand over on I/O and locks.
    old_switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with _environment(env), mock_aws(), ScaledBackoff(factor), _scaled_stream_backoff(factor):
        boto3.setup_default_session()
        clock = ModelClock(factor)
        sqs = ModelSqs(clock.now)
        capacity = spec.table_write_units
        config = LimitsConfig(time_scale=factor, table_initial_write_units=capacity, table_initial_read_units=capacity)
        limits = DynamoDBLimits(config, clock=clock.limits_clock)
        aws = ModelAws(limits, sqs)
        aws.attach(boto3.DEFAULT_SESSION)
        stack = Stack(path.template(), prefix="scale").provision(boto3.client("dynamodb"), boto3.client("sqs"))
        table = stack.refs["JobsTable"]
        os.environ.update(
            {
                "JOBS_TABLE_NAME": table,
                "IMAGE_QUEUE_URL": stack.refs["ImageQueue"],
                "DEAD_LETTER_QUEUE_URL": stack.refs["ImageDeadLetterQueue"],
            }
        )
        pool = ThreadPoolExecutor(max_workers=spec.concurrency * 10 + 20, thread_name_prefix="image")
        downloader = ModelDownloader(make_image("JPEG", 640, 480), DOWNLOAD_LATENCY_S * factor)
        path.setup(table, factor, downloader, pool)
        errors = ErrorLog()
        service_logger = logging.getLogger("retail-pulse")
        saved_handlers = service_logger.handlers[:]
        service_logger.handlers = [errors]
        try:
            return _run(spec, path, stack, aws, sqs, clock, limits, pool, errors, store_master, wall_limit_s)
        finally:
            service_logger.handlers = saved_handlers
            path.teardown()
            pool.shutdown(wait=False, cancel_futures=True)
            threading.stack_size(old_stack_size)
            sys.setswitchinterval(old_switch_interval)


def _run(spec, path, stack, aws, sqs, clock, limits, pool, errors, store_master, wall_limit_s) -> RunResult:  # noqa: PLR0917
    from retail_pulse.adapters.store_master_source import load_store_master
    from retail_pulse.domain.tenancy import DEFAULT_CLIENT
    from retail_pulse.logic.submit import submit_job
    from retail_pulse.settings import get_settings

    main, dlq = sqs.queue(stack.refs["ImageQueue"]), sqs.queue(stack.refs["ImageDeadLetterQueue"])
    dead_letters: collections.Counter[str] = collections.Counter()
    dlq_send = dlq.send

    def count_dead_letter(body: str, group: str | None = None, attributes: dict | None = None) -> Any:
        dead_letters["with measured result" if '"result":' in body else "after 5 receives"] += 1
        return dlq_send(body, group, attributes)

    dlq.send = count_dead_letter
    stores = load_store_master(str(store_master))
    image_queue = ModelImageQueue(main)
    job_ids = []
    bodies = job_bodies(spec, [s.store_id for s in stores])
    submitted: dict[str, tuple[int, int]] = {}
    for body in bodies:
        for visit in json.loads(body)["visits"]:
            area = stores.get(visit["store_id"]).area_code
            images, visits = submitted.get(area, (0, 0))
            submitted[area] = (images + len(visit["image_url"]), visits + 1)
    for body in bodies:
        answer = submit_job(
            body,
            settings=get_settings(),
            jobs=path.submit_repository(),
            queue=image_queue,
            stores=stores,
            client_id=DEFAULT_CLIENT,
        )
        job_ids.append(answer["job_id"])
    limits.reset()  # what is measured starts here: submit's job items are not the write path
    plain = boto3.session.Session().client("dynamodb")  # moto without the limits model: for reading back

    def jobs_ended() -> bool:
        with aws.moto_lock:
            items = []
            for start in range(0, len(job_ids), 100):
                keys = [{"pk": {"S": f"JOB#{j}"}, "sk": {"S": "JOB"}} for j in job_ids[start : start + 100]]
                resp = plain.batch_get_item(RequestItems={stack.refs["JobsTable"]: {"Keys": keys}})
                items += resp["Responses"][stack.refs["JobsTable"]]
        return len(items) == len(job_ids) and all(i["status"]["S"] != "ongoing" for i in items)

    streams = None
    stream_function = FunctionStats()
    handler = path.stream_handler()
    if handler is not None:
        streams = _stream_consumers(spec, stack, aws, clock, handler, stream_function)
    shortened = sqs.shortened
    sources = [
        SqsEventSource(
            "ProcessImage",
            main,
            stack.attrs[("ImageQueue", "Arn")],
            path.process_handler(),
            spec.concurrency,
            clock,
            shortened,
        ),
        SqsEventSource(
            "DeadLetter",
            dlq,
            stack.attrs[("ImageDeadLetterQueue", "Arn")],
            path.dead_letter_handler(),
            2,
            clock,
            shortened,
        ),
    ]
    requests_before = aws.requests.copy()
    clock.start()
    started = time.monotonic()
    runner = Runner(
        clock,
        sources,
        streams,
        jobs_ended,
        RunLimits(wall_s=wall_limit_s, modelled_s=MODELLED_LIMIT_S),
        progress=lambda line: print(f"    {line}", flush=True),
    )
    outcome = runner.run()
    wall_s = time.monotonic() - started
    snapshot = limits.snapshot()
    with aws.moto_lock:
        if spec.path == "new":
            verified = verify_new(plain, stack.refs["JobsTable"], job_ids, spec, stores, clock, submitted)
        else:
            verified = verify_old(plain, stack.refs["JobsTable"], job_ids, spec, stores, clock, submitted)
    completions = [t for t in verified.finished_at if t is not None]
    functions = {"ProcessImage": sources[0].function, "DeadLetter": sources[1].function}
    if streams is not None:
        functions["CountResults"] = stream_function
    sqs_requests = collections.Counter(aws.sqs_requests)
    sqs_requests["SendMessageBatch (submit)"] = image_queue.batches
    for source in sources:
        sqs_requests.update(source.stats.requests)
    return RunResult(
        spec=spec,
        outcome=outcome,
        wall_s=wall_s,
        makespan_s=max(completions) if len(completions) == len(job_ids) else float("nan"),
        completions=completions,
        steady_rate=verified.steady_rate,
        limits=snapshot,
        attempts=dict(path.attempts.counts),
        functions=functions,
        queues={"ProcessImage": sources[0].stats, "DeadLetter": sources[1].stats},
        sqs_requests=dict(sqs_requests),
        dead_letters=dict(dead_letters),
        verified=verified,
        dynamodb_requests=aws.requests["dynamodb"] - requests_before["dynamodb"],
        errors=errors.counts,
    )


def _stream_consumers(spec, stack, aws, clock, handler, function) -> StreamConsumers:  # noqa: PLR0917
    factor = spec.factor
    fn = stack.functions(resolve_environment=False)["CountResultsFunction"]
    (source,) = fn.stream_sources
    arn = stack.attrs[(source.table, "StreamArn")]
    stream = ShardedStream(streams_client(), arn, spec.stream_shards, min_fill_interval_s=0.25 * factor)

    def invoke(event: dict) -> tuple[bool, Any]:
        context = LambdaContext(function_name="CountResults", timeout_s=fn.timeout * factor)
        return function.invoke(handler, event, context, factor)

    pumps = []
    for shard in range(spec.stream_shards):
        pump = StreamPump(
            stream.view(shard),
            arn,
            invoke,
            batch_size=source.batch_size,
            batching_window_s=source.batching_window_s * factor,
            filters=source.filters,
            report_item_failures=source.report_item_failures,
            starting_position=source.starting_position,
            max_retry_attempts=source.max_retry_attempts,
            bisect_on_error=source.bisect_on_error,
            tumbling_window_s=source.tumbling_window_s * factor,
            poll_interval_s=0.25 * factor,
            name=f"CountResults shard {shard}",
        )
        pump.prime()
        pumps.append(pump)
    from moto.dynamodb.models import dynamodb_backends

    from local_stack.moto_patches import next_sequence

    moto_shard = dynamodb_backends[ACCOUNT][REGION].tables[stack.refs["JobsTable"]].stream_shard

    def unread() -> int:
        """Records written to moto's stream shard that the router has not read yet."""
        with aws.moto_lock:
            if stream.last_sequence is None:
                return len(moto_shard.items)
            return next_sequence(moto_shard) - stream.last_sequence - 1

    return StreamConsumers(pumps, stream, unread, function)


def calibrate(seconds: float = 2.0) -> dict[str, float]:
    """PutItem and GetItem per second through the limits model on one thread (this machine's moto)."""
    from moto import mock_aws

    install_moto_speedups()
    with _environment(ENV), mock_aws():
        boto3.setup_default_session()
        clock = ModelClock(1.0)
        aws = ModelAws(DynamoDBLimits(LimitsConfig(), clock=clock.limits_clock), ModelSqs(clock.now))
        aws.attach(boto3.DEFAULT_SESSION)
        ddb = boto3.client("dynamodb")
        stack = Stack(NewPath().template(), prefix="calibrate").provision(ddb, boto3.client("sqs"))
        table = stack.refs["JobsTable"]
        rates = {}
        for name in ("put", "get"):
            n, started = 0, time.monotonic()
            while time.monotonic() - started < seconds:
                key = {"pk": {"S": f"JOB#calibrate#R{n % 16:02d}"}, "sk": {"S": f"IMG#{n:08d}"}}
                if name == "put":
                    item = {**key, "store_id": {"S": "RP00001"}, "status": {"S": "succeeded"}}
                    ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
                else:
                    ddb.get_item(TableName=table, Key=key, ConsistentRead=True)
                n += 1
            rates[name] = n / (time.monotonic() - started)
        return rates
