"""Wires the local stack together from template.yaml: AWS endpoint, resources, functions, API,
SQS and DynamoDB stream event sources, and schedules."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from botocore.config import Config

from devkit.function_env import local_environment
from devkit.template import REGION, Stack

from .aws import AwsEndpoint
from .dynamodb_limits import LimitsConfig
from .dynamodb_limits_adapters import LIMITS_PATH
from .event_source import SqsEventSource
from .functions import FunctionPool
from .gateway import INTEGRATION_TIMEOUT_S, Gateway
from .proxy_event import LOCAL_DEFAULT_API_KEY_ID, api_key_id
from .samples import serve_sample
from .state import DEFAULT_INTERVAL_S, StateDir, StateKeeper
from .stream_source import StreamEventSource
from .topics import PREFIX as TOPICS_PREFIX
from .topics import TopicInbox

API_POOL_SIZE = 8
BACKGROUND_NICE = 10


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 3000
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    max_concurrency: int | None = None  # default: the template's MaximumConcurrency
    visibility_timeout: float | None = None  # default: the template's VisibilityTimeout
    warm: int = 2  # workers started per function before the stack reports ready
    environment: dict[str, str] = field(default_factory=dict)  # extra function env (after passthrough)
    api_keys: list[str] = field(default_factory=list)  # when set, routes that require a key check x-api-key
    # Keys that see every client's jobs (also accepted as keys): AdminApiKeyIds gets their ids.
    admin_api_keys: list[str] = field(default_factory=list)
    # The callback signing key kept in the local Secrets Manager ("" : no callbacks); None: see
    # chosen_signing_secret.
    callback_signing_secret: str | None = None
    integration_timeout: float = INTEGRATION_TIMEOUT_S  # API Gateway's; tests shorten it
    aws_limits: LimitsConfig | None = field(default_factory=LimitsConfig)  # None: moto never refuses
    template: Path | None = None  # default: template.yaml (tests run others)
    state_dir: Path | None = None  # where the AWS side is kept across restarts (state.py); None: nowhere
    fresh: bool = False  # discard what state_dir holds and start empty
    state_interval: float = DEFAULT_INTERVAL_S  # seconds between saves
    # Serve no API route (`make sam-local`: SAM's emulator serves them); samples and topics still served.
    no_api: bool = False
    env_file: Path | None = None  # where to write each function's environment (JSON, SAM's --env-vars shape)
    # Every rate() schedule runs this often instead (tests of scheduled functions); None: the template's rate.
    schedule_period: float | None = None


ADMIN_KEYS_PARAMETER = "AdminApiKeyIds"


def admin_key_ids(options: Options) -> str | None:
    """The AdminApiKeyIds the local stack gives the template: the ids it derives from --admin-api-key
    (as API Gateway names a key by its id), unless --parameter-overrides chose them."""
    if ADMIN_KEYS_PARAMETER in options.parameter_overrides or not options.admin_api_keys:
        return None
    return ",".join(dict.fromkeys(api_key_id(key) for key in options.admin_api_keys))


# The template's secret that signs job callbacks, and the local stack's own variable choosing its
# value locally (the functions only ever get the secret's ARN and read it from Secrets Manager).
SIGNING_SECRET_RESOURCE = "CallbackSigningSecret"  # noqa: S105 - a name, not a secret
SIGNING_SECRET_VARIABLE = "CALLBACK_SIGNING_SECRET"  # noqa: S105 - a name, not a secret


def chosen_signing_secret(options: Options, environ=os.environ) -> str | None:
    """The callback signing key the local Secrets Manager keeps: --callback-signing-secret, else
    CALLBACK_SIGNING_SECRET of the local stack's environment; "" runs without callbacks (submit
    then refuses a callback_url); None: made up for the run (kept with the state)."""
    if options.callback_signing_secret is not None:
        return options.callback_signing_secret
    return environ.get(SIGNING_SECRET_VARIABLE)


def parse_rate(expression: str) -> float | None:
    """Seconds between runs for `rate(N unit)`; None for cron() (not run locally)."""
    m = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not m:
        return None
    return int(m.group(1)) * {"minute": 60, "hour": 3600, "day": 86400}[m.group(2).rstrip("s")]


class LocalStack:
    def __init__(self, options: Options) -> None:
        self.options = options
        state = StateDir(options.state_dir).claim() if options.state_dir else None
        if state and options.fresh:
            state.wipe()
        self.aws = AwsEndpoint(options.host, options.aws_limits, state.moto_file if state else None).start()
        config = Config(retries={"mode": "standard"})
        if options.template:
            self.stack = Stack.from_file(options.template, options.parameter_overrides, prefix="local")
        else:
            self.stack = Stack(parameters=options.parameter_overrides, prefix="local")
        admins = admin_key_ids(options)
        if admins is not None and ADMIN_KEYS_PARAMETER in self.stack.template.get("Parameters", {}):
            self.stack.parameters[ADMIN_KEYS_PARAMETER] = admins
        chosen = chosen_signing_secret(options)
        secrets_client = self.aws.client("secretsmanager", config=config)
        try:
            self.stack.provision(
                self.aws.client("dynamodb", config=config),
                self.aws.client("sqs", config=config),
                self.aws.client("s3", config=config),
                self.aws.client("sns", config=config),
                secretsmanager=secrets_client,
                secret_values={SIGNING_SECRET_RESOURCE: chosen} if chosen else None,
                existing_ok=bool(self.aws.moto_restored and self.aws.moto_restored.ok),
            )
        except ValueError as exc:  # a restored table that the template has changed since
            self.aws.stop()
            raise SystemExit(f"{exc}: the state in {options.state_dir} is from another template; use --fresh") from None
        # What the callbacks are signed with (a restored state keeps its key), for the banner.
        self.signing_secret, self.signing_secret_chosen = "", chosen is not None
        if chosen != "" and SIGNING_SECRET_RESOURCE in self.stack.refs:
            arn = self.stack.refs[SIGNING_SECRET_RESOURCE]
            self.signing_secret = secrets_client.get_secret_value(SecretId=arn)["SecretString"]
        # SNS topics (e.g. JobEventsTopic) are readable at GET /_local/topics/<LogicalId>.
        self.topics = TopicInbox(options.host)
        for logical in self.stack.of_type("AWS::SNS::Topic"):
            self.topics.subscribe(self.aws.client("sns", config=config), logical, self.stack.refs[logical])
        # Saved messages go back in their queues before any event source reads them.
        self.state = StateKeeper(state, self.aws, self.topics, options.state_interval) if state else None
        if self.state:
            self.state.restore(options.fresh)
        if options.visibility_timeout is not None:
            for queue in self.aws.sqs.queues.values():
                queue.attributes["VisibilityTimeout"] = str(options.visibility_timeout)
        # The API's stage, Cors, GatewayResponses and binary media types, parameters resolved.
        api = self.stack.rest_api()
        self.stage = api.stage if api else self.stack.parameters.get("Stage", "local")
        self.gateway = Gateway(
            self.stage,
            {"/samples/": serve_sample, TOPICS_PREFIX: self.topics.serve},
            api=api,
            api_keys=frozenset([*options.api_keys, *options.admin_api_keys]),
            integration_timeout=options.integration_timeout,
        )
        self.pools: dict[str, FunctionPool] = {}
        self.event_sources: list[SqsEventSource] = []
        self.stream_sources: list[StreamEventSource] = []
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        raw_specs = self.stack.functions(resolve_environment=False)
        for name, spec in self.stack.functions().items():
            self._add_function(spec, raw_specs[name].environment)
        if options.env_file:
            environments = {name: pool.env for name, pool in self.pools.items()}
            options.env_file.write_text(json.dumps(environments, indent=2, sort_keys=True))

    def _function_env(self, resolved: dict[str, str], raw: dict) -> dict[str, str]:
        overrides = dict(self.options.environment)
        if "CALLBACK_SIGNING_SECRET_ARN" in resolved and not self.signing_secret:
            overrides["CALLBACK_SIGNING_SECRET_ARN"] = ""  # CALLBACK_SIGNING_SECRET chosen empty: no callbacks
        return local_environment(resolved, raw, self.stack.resources, self.aws.environment(), overrides=overrides)

    def _add_function(self, spec, raw_env: dict) -> None:
        env = self._function_env(spec.environment, raw_env)
        sources = [s for s in spec.sqs_sources if s.enabled]
        streams = [s for s in spec.stream_sources if s.enabled]
        concurrency = max([s.max_concurrency for s in sources] or [API_POOL_SIZE])
        if sources and self.options.max_concurrency:
            concurrency = self.options.max_concurrency
        elif streams and not sources and not spec.routes:
            # One batch in flight per stream source (one shard here, ParallelizationFactor 1).
            concurrency = len(streams)
        # On AWS every invocation has its own CPU; here queue and stream consumers share two cores
        # with the API functions, so they run at a lower priority to keep requests answered promptly.
        nice = BACKGROUND_NICE if sources or streams or spec.schedules else 0
        pool = FunctionPool(spec, env, [str(d) for d in spec.layer_dirs], concurrency, nice)
        self.pools[spec.logical_id] = pool
        for route in [] if self.options.no_api else spec.routes:
            self.gateway.add_route(route.method, route.path, pool, route.api_key_required)
        for source in sources:
            queue = self.aws.sqs.queue_by_url(self.stack.refs[source.queue])
            if queue.visibility_timeout < spec.timeout:
                # Lambda refuses this mapping: a batch still running would be delivered again.
                raise SystemExit(
                    f"InvalidParameterValueException: Queue visibility timeout: {queue.visibility_timeout:g} seconds"
                    f" is less than Function timeout: {spec.timeout:g} seconds ({spec.logical_id} <- {source.queue})"
                )
            self.event_sources.append(
                SqsEventSource(queue, pool, source.batch_size, concurrency, source.report_item_failures)
            )
        for stream in streams:
            client = self.aws.client("dynamodbstreams", config=Config(retries={"mode": "standard"}))
            self.stream_sources.append(StreamEventSource(self.stack, stream, client, pool, BACKGROUND_NICE))
        for expression in spec.schedules:
            period = parse_rate(expression)
            if period and self.options.schedule_period:
                period = self.options.schedule_period
            if period:
                threading.Thread(target=self._run_schedule, args=(pool, period), daemon=True).start()

    def _run_schedule(self, pool: FunctionPool, period: float) -> None:
        while not self._stop.wait(period):
            pool.invoke(
                {
                    "version": "0",
                    "id": str(uuid.uuid4()),
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "account": "123456789012",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "region": REGION,
                    "resources": [],
                    "detail": {},
                }
            )

    def start(self) -> LocalStack:
        for pool in self.pools.values():
            pool.warm(self.options.warm)
        for pool in self.pools.values():
            pool.wait_warm(timeout=120)
        for source in self.event_sources:
            source.start()
        for stream in self.stream_sources:
            stream.start()
        self._server = self.gateway.serve(self.options.host, self.options.port)
        threading.Thread(target=self._server.serve_forever, name="api", daemon=True).start()
        if self.state:
            self.state.start()
        return self

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local stack has not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def describe(self) -> str:
        lines = [
            f"API          {self.url}  (stage {self.stage}, also at {self.url}/{self.stage}/; "
            f"try {self.url}/api/health)",
            f"AWS endpoint {self.aws.moto_url}  (moto: DynamoDB, S3, ...; SQS at {self.aws.sqs_url})",
            f"AWS limits   {self._limits_banner()}",
            f"State        {self._state_banner()}",
            f"Samples      {self.url}/samples/shelf.jpg",
            f"SNS topics   {self.url}{TOPICS_PREFIX}<LogicalId>  (messages moto delivered, e.g. JobEventsTopic)",
        ]
        if self.options.no_api:
            lines[0] = f"API          none (--no-api); samples and topics at {self.url}"
        lines.append(f"Clients      {self._clients_banner()}")
        if self.signing_secret and not self.signing_secret_chosen:
            lines.append(
                f"Callbacks    signed with keys derived from {SIGNING_SECRET_VARIABLE}={self.signing_secret} "
                f"(made up, kept in the local Secrets Manager as {SIGNING_SECRET_RESOURCE}; "
                f"{SIGNING_SECRET_VARIABLE}=... to choose); a client's own key: GET /api/callbacks/key"
            )
        lines.append("INIT         " + self._init_banner())
        for route in self.gateway.routes:
            lines.append(f"  {route.method:6} {route.resource:28} -> {route.target.spec.logical_id}")
        for source in self.event_sources:
            lines.append(
                f"  SQS {source.queue.name} -> {source.pool.spec.logical_id} "
                f"(batch {source.batch_size}, concurrency {source.max_concurrency})"
            )
        for stream in self.stream_sources:
            lines.append(f"  {stream.describe()}")
        lines.append(json.dumps({"tables": self.stack.refs.get("JobsTable")}))
        return "\n".join(lines)

    def _clients_banner(self) -> str:
        """Which keys are checked and the client (apiKeyId) each one is: a job belongs to its key."""
        keys = list(dict.fromkeys([*self.options.api_keys, *self.options.admin_api_keys]))
        if not keys:
            return f"no API key checked: every request is client {LOCAL_DEFAULT_API_KEY_ID} (--api-key KEY checks keys)"
        admins = set(self.options.admin_api_keys)
        shown = [f"{key[:4]}... -> {api_key_id(key)}{' (admin)' if key in admins else ''}" for key in keys]
        return f"{len(keys)} API key(s), each its own client (key -> apiKeyId): " + ", ".join(shown)

    def _state_banner(self) -> str:
        if self.state is None:
            return "not kept (--no-state): everything is gone when the stack stops"
        return (
            f"{self.state.state.path}  {self.state.summary}; saved every {self.options.state_interval:g} s "
            "and on Ctrl-C (--fresh starts empty)"
        )

    def _init_banner(self) -> str:
        """Each function's handler import in its warm workers (median, on this machine: Lambda's INIT
        runs on a share of a vCPU proportional to memory, see benchmarks/cold_start.py)."""
        parts = []
        for name, pool in self.pools.items():
            times = sorted(pool.init_times())
            if times:
                parts.append(f"{name.removesuffix('Function')} {times[len(times) // 2] * 1000:.0f} ms")
        return ", ".join(parts) or "no worker started"

    def _limits_banner(self) -> str:
        limits = self.options.aws_limits
        if limits is None:
            return "off (moto never conflicts nor throttles; --no-aws-limits)"
        return f"on ({limits.describe()}; counters at {self.aws.moto_url}{LIMITS_PATH})"

    def stop(self) -> None:
        self._stop.set()
        for source in self.event_sources:
            source.stop()
        for stream in self.stream_sources:
            stream.stop()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for pool in self.pools.values():
            pool.stop()
        if self.state:
            # Nothing runs any more: this save is consistent (messages in flight are visible again).
            try:
                self.state.stop()
            except Exception as exc:  # the stack still stops; the last periodic save remains
                print(f"state: the final save to {self.state.state.path} failed: {exc}", flush=True)
        self.topics.stop()
        self.aws.stop()
