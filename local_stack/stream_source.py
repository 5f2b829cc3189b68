"""Drives a table's DynamoDB stream (on the moto server) into a function's worker pool the way the
Lambda DynamoDB event source mapping does: devkit/streams.py's StreamPump in a thread of its own."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from devkit.stream_sources import pump_for
from devkit.template import Stack, StreamSource

from .functions import FunctionPool


class StreamEventSource:
    def __init__(
        self, stack: Stack, source: StreamSource, streams_client: Any, pool: FunctionPool, nice: int = 0
    ) -> None:
        self.source = source
        self.pool = pool
        self.nice = nice
        self.pump = pump_for(stack, source, streams_client, self._invoke)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{source.table}-{source.function}", daemon=True)

    def _invoke(self, event: dict) -> tuple[bool, Any]:
        invocation = self.pool.invoke(event)
        return invocation.ok, invocation.payload

    def _run(self) -> None:
        # Reading and parsing batches of 1,000 records is background work: on Linux a thread has a
        # priority of its own, so it yields the CPU to the API (as the consumers' workers do).
        if self.nice:
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        self.pump.run(self._stop)

    def start(self) -> StreamEventSource:
        # The mapping exists before any request is served: LATEST starts here, TRIM_HORIZON anyway.
        self.pump.prime()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def describe(self) -> str:
        return (
            f"DynamoDB stream {self.source.table} -> {self.source.function} "
            f"(batch {self.source.batch_size}, window {self.source.batching_window_s:g} s)"
        )
