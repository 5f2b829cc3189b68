"""`python -m local_stack`: serve the whole app from template.yaml on this machine (no Docker)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from .stack import LocalStack, Options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="template parameters, as sam"
    )
    parser.add_argument("--max-concurrency", type=int, help="batches in flight (default: template's)")
    parser.add_argument("--visibility-timeout", type=float, help="seconds (default: the template's)")
    parser.add_argument("--warm", type=int, default=2, help="workers per function started before ready")
    parser.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE", help="extra function environment")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="require this x-api-key on the routes the template keys (repeatable; default: no key checked)",
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
        template=args.template,
    )
    stack = LocalStack(options).start()
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
