"""Runs the template's functions like Lambda does: each invocation in a worker process of its own
function (own environment, own module state, one invocation at a time), warm workers reused, a
context whose remaining time follows the function's Timeout, and a worker killed on timeout.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from devkit.lambda_runtime import LambdaContext
from devkit.template import FunctionSpec


def _worker_main(spec: dict, env: dict[str, str], conn: Connection) -> None:
    if spec.get("nice"):
        os.nice(spec["nice"])
    os.environ.update(env)
    sys.path[:0] = [spec["code_uri"], *spec["layer_dirs"]]
    module_name, function_name = spec["handler"].rsplit(".", 1)
    # Lambda's INIT phase: the handler module's import (a cold start pays it before the first event).
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception:  # an import error is reported on every invocation, as Lambda does
        error = traceback.format_exc()

        def handler(_event: Any, _context: Any) -> Any:
            raise RuntimeError(f"Runtime.ImportModuleError: {error}")

    conn.send(("ready", time.perf_counter() - started))
    while True:
        try:
            request = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if request is None:
            return
        event, request_id = request
        context = LambdaContext(
            function_name=spec["name"],
            memory_limit_in_mb=spec["memory"],
            invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{spec['name']}",
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{spec['name']}",
            log_stream_name="local",
            deadline=time.monotonic() + spec["timeout"],
        )
        try:
            conn.send(("ok", handler(event, context)))
        except Exception as exc:
            conn.send(
                ("error", {"errorType": type(exc).__name__, "errorMessage": str(exc), "trace": traceback.format_exc()})
            )


@dataclass
class Invocation:
    ok: bool
    payload: Any
    duration_s: float


class _Worker:
    def __init__(self, ctx: Any, spec: dict, env: dict[str, str]) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(spec, env, child), daemon=True, name=spec["name"])
        self.process.start()
        child.close()
        self.ready = False
        self.init_s: float | None = None  # the handler's import, as timed in the worker
        # wait_warm (the stack's thread) and invoke (a poller's) may wait on one worker at once: only
        # one may read the "ready" message, or the other would take the first invocation's answer.
        self._ready_lock = threading.Lock()

    def wait_ready(self, timeout: float) -> bool:
        """Cold start: wait for the import to finish (not counted against the function's Timeout)."""
        with self._ready_lock:
            if not self.ready and self.conn.poll(timeout):
                status, self.init_s = self.conn.recv()
                self.ready = status == "ready"
            return self.ready

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()


class FunctionPool:
    """Up to `max_workers` concurrent invocations of one function."""

    def __init__(
        self, spec: FunctionSpec, env: dict[str, str], layer_dirs: list[str], max_workers: int, nice: int = 0
    ) -> None:
        self.spec = spec
        self.env = env
        self._spec = {
            "name": spec.logical_id,
            "code_uri": str(spec.code_uri),
            "handler": spec.handler,
            "timeout": spec.timeout,
            "memory": spec.memory,
            "layer_dirs": layer_dirs,
            "nice": nice,
        }
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_workers)
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self.max_workers = max_workers

    def warm(self, count: int) -> None:
        for _ in range(min(count, self.max_workers) - len(self._all)):
            self._idle.put(self._spawn())

    def wait_warm(self, timeout: float) -> None:
        """Block until the idle workers have finished importing the function (their cold start)."""
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.wait_ready(timeout)

    def init_times(self) -> list[float]:
        """Import times (s) of the workers started so far (their INIT, on this machine's CPU)."""
        with self._lock:
            return [w.init_s for w in self._all if w.init_s is not None]

    def _spawn(self) -> _Worker:
        worker = _Worker(self._ctx, self._spec, self.env)
        with self._lock:
            self._all.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        worker.process.kill()

    def invoke(self, event: Any) -> Invocation:
        started = time.monotonic()
        with self._slots:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                worker = self._spawn()
            try:
                if not worker.wait_ready(120):
                    self._retire(worker)
                    return Invocation(False, {"errorType": "Runtime.InitTimeout"}, time.monotonic() - started)
                started = time.monotonic()
                worker.conn.send((event, str(uuid.uuid4())))
                if not worker.conn.poll(self.spec.timeout + 1):
                    self._retire(worker)
                    return Invocation(False, {"errorType": "Sandbox.Timedout"}, time.monotonic() - started)
                status, payload = worker.conn.recv()
            except (EOFError, BrokenPipeError, OSError) as exc:
                self._retire(worker)
                return Invocation(False, {"errorType": "Runtime.ExitError", "errorMessage": str(exc)}, 0.0)
            self._idle.put(worker)
            if status != "ok":
                # What CloudWatch Logs would show for a failed invocation.
                print(
                    f"[{self.spec.logical_id}] invocation failed: {payload.get('trace')}", file=sys.stderr, flush=True
                )
            return Invocation(status == "ok", payload, time.monotonic() - started)

    def stop(self) -> None:
        with self._lock:
            workers, self._all = list(self._all), []
        for worker in workers:
            worker.stop()
