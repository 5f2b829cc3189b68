"""`python -m local_stack`: serve the whole app from template.yaml on this machine (no Docker)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .dynamodb_limits import LimitsConfig
from .gateway import INTEGRATION_TIMEOUT_S
from .stack import LocalStack, Options
from .state import DEFAULT_INTERVAL_S, DEFAULT_STATE_DIR, StateDirInUse


def aws_limits(args: argparse.Namespace) -> LimitsConfig | None:
    """The DynamoDB limits model's parameters: on unless --no-aws-limits or LOCAL_AWS_LIMITS=off."""
    if args.no_aws_limits or os.environ.get("LOCAL_AWS_LIMITS", "on").lower() in ("off", "0", "false", "no"):
        return None
    defaults = LimitsConfig()
    return LimitsConfig(
        commit_window_s=args.aws_commit_window if args.aws_commit_window is not None else defaults.commit_window_s,
        partition_write_units=args.aws_partition_wcu or defaults.partition_write_units,
        partition_read_units=args.aws_partition_rcu or defaults.partition_read_units,
        time_scale=args.aws_limits_scale,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="template parameters, as sam"
    )
    parser.add_argument("--max-concurrency", type=int, help="batches in flight (default: template's)")
    parser.add_argument(
        "--visibility-timeout", type=float, help="seconds (default: the template's; not below its consumer's Timeout)"
    )
    parser.add_argument("--warm", type=int, default=2, help="workers per function started before ready")
    parser.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE", help="extra function environment")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="require this x-api-key on the routes the template keys (repeatable: each key is a client of its "
        "own, seeing only its own jobs; default: no key checked)",
    )
    parser.add_argument(
        "--admin-api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a key that sees every client's jobs (repeatable; sets the template's AdminApiKeyIds to its id; "
        "also checked like --api-key)",
    )
    parser.add_argument(
        "--callback-signing-secret",
        metavar="KEY",
        help="the key signing job callbacks, kept in the local Secrets Manager (default: $CALLBACK_SIGNING_SECRET, "
        "else made up and printed; empty: no callbacks)",
    )
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=INTEGRATION_TIMEOUT_S,
        metavar="SECONDS",
        help="API Gateway's integration timeout: a slower function's caller gets 504 (default: %(default)s)",
    )
    state = parser.add_argument_group("state", "the AWS side kept across restarts (DynamoDB, S3, SNS, queues)")
    state.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("LOCAL_STATE_DIR") or DEFAULT_STATE_DIR),
        metavar="DIR",
        help="where it is kept (default: .local/state/ in the repository, or LOCAL_STATE_DIR)",
    )
    state.add_argument("--fresh", action="store_true", help="discard what --state-dir holds and start empty")
    state.add_argument("--no-state", action="store_true", help="keep nothing: in memory only (tests, benchmarks)")
    state.add_argument(
        "--state-interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="S",
        help="seconds between saves while running (default %(default)s; also saved on Ctrl-C/SIGTERM)",
    )
    parser.add_argument(
        "--no-api",
        action="store_true",
        help="serve no API route (for `make sam-local`: sam local start-api serves them); the rest runs",
    )
    parser.add_argument(
        "--write-env",
        type=Path,
        metavar="FILE",
        help="write each function's environment to FILE (JSON: logical id -> variables)",
    )
    limits = parser.add_argument_group("AWS limits", "a model of DynamoDB's limits in front of moto (on by default)")
    limits.add_argument("--no-aws-limits", action="store_true", help="moto as it is (also LOCAL_AWS_LIMITS=off)")
    limits.add_argument(
        "--aws-limits-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="time scale: per-second budgets divided by F, commit window multiplied by F (default 1)",
    )
    limits.add_argument("--aws-commit-window", type=float, metavar="S", help="transaction commit window (0.015 s)")
    limits.add_argument("--aws-partition-wcu", type=float, metavar="N", help="WCU/s per partition key value (1000)")
    limits.add_argument("--aws-partition-rcu", type=float, metavar="N", help="RCU/s per partition key value (3000)")
    parser.add_argument(
        "--schedule-period",
        type=float,
        metavar="S",
        help="run every rate() schedule (the stall sweeper's) every S seconds instead of its rate (tests)",
    )
    parser.add_argument(
        "--template", type=Path, help="a SAM template other than template.yaml (paths in it relative to it)"
    )
    args = parser.parse_args(argv)

    options = Options(
        host=args.host,
        port=args.port,
        parameter_overrides=dict(kv.split("=", 1) for kv in args.parameter_overrides),
        max_concurrency=args.max_concurrency,
        visibility_timeout=args.visibility_timeout,
        environment=dict(kv.split("=", 1) for kv in args.env),
        warm=args.warm,
        api_keys=args.api_key,
        admin_api_keys=args.admin_api_key,
        callback_signing_secret=args.callback_signing_secret,
        integration_timeout=args.integration_timeout,
        aws_limits=aws_limits(args),
        template=args.template,
        state_dir=None if args.no_state else args.state_dir.expanduser().resolve(),
        fresh=args.fresh,
        state_interval=args.state_interval,
        no_api=args.no_api,
        env_file=args.write_env,
        schedule_period=args.schedule_period,
    )
    try:
        stack = LocalStack(options).start()
    except StateDirInUse as exc:
        print(f"local stack: {exc}", file=sys.stderr, flush=True)
        return 2
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    print(stack.describe(), flush=True)
    print(f"Local stack ready at {stack.url} (Ctrl-C stops it)", flush=True)
    stopped.wait()
    print("stopping...", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
