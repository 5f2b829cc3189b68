"""A provisioned stack's DynamoDB stream event sources as StreamPumps: what the in-process tests and
the benchmark use to run a template's stream-triggered functions (the local stack runs the same
pumps against its moto server, see local_stack/stream_source.py)."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

from devkit.lambda_runtime import LambdaContext
from devkit.streams import Invoke, StreamPump
from devkit.template import FunctionSpec, Stack, StreamSource


def in_process_invoker(handler: Callable[..., Any], *, lazy: bool = False) -> Invoke:
    """Invoke a handler in this process as Lambda would: the event as fresh JSON (a handler that
    mutates it cannot alter a retried batch), an exception as a failed invocation, the response
    through JSON (what cannot be serialised fails, like Lambda's Runtime.MarshalError). With `lazy`,
    `handler` is a function returning the handler at each call (tests may swap it)."""

    def invoke(event: dict) -> tuple[bool, Any]:
        target = handler() if lazy else handler
        try:
            response = target(json.loads(json.dumps(event)), LambdaContext())
            return True, json.loads(json.dumps(response))
        except Exception as exc:
            return False, {"errorType": type(exc).__name__, "errorMessage": str(exc), "trace": traceback.format_exc()}

    return invoke


def pump_for(stack: Stack, source: StreamSource, client: Any, invoke: Invoke, **overrides: Any) -> StreamPump:
    """The pump of one `Type: DynamoDB` event, its settings from the template (or `overrides`)."""
    settings: dict[str, Any] = {
        "batch_size": source.batch_size,
        "batching_window_s": source.batching_window_s,
        "filters": source.filters,
        "report_item_failures": source.report_item_failures,
        "starting_position": source.starting_position,
        "max_retry_attempts": source.max_retry_attempts,
        "bisect_on_error": source.bisect_on_error,
        "tumbling_window_s": source.tumbling_window_s,
        "name": f"{source.table}->{source.function}",
    }
    settings.update(overrides)
    return StreamPump(client, stack.attrs[(source.table, "StreamArn")], invoke, **settings)


class StackStreams:
    """Every enabled stream event source of a provisioned stack, pumped synchronously on demand.
    Nothing is read or created when the template has none."""

    def __init__(self, stack: Stack, client: Any, invoker_for: Callable[[FunctionSpec], Invoke]) -> None:
        self.pumps: dict[str, list[StreamPump]] = {}
        for spec in stack.functions(resolve_environment=False).values():
            for source in spec.stream_sources:
                if source.enabled:
                    pump = pump_for(stack, source, client, invoker_for(spec))
                    # The mapping exists from the stack's creation: LATEST means records written after it.
                    pump.prime()
                    self.pumps.setdefault(spec.logical_id, []).append(pump)

    def pump(self, function: str | None = None, *, max_rounds: int = 1000) -> int:
        """Deliver until the streams are caught up (what the functions write may trigger more) or a
        batch fails (see each pump's `failed_invocations` / `last_error`); returns the records
        delivered. `function` limits it to that function's sources."""
        if function is not None and function not in self.pumps:
            raise KeyError(f"{function} has no DynamoDB stream event source (has: {sorted(self.pumps)})")
        pumps = [p for name, ps in self.pumps.items() if function in (None, name) for p in ps]
        total = 0
        for _ in range(max_rounds):
            delivered = sum(p.poll_once(flush=True) for p in pumps)
            total += delivered
            if not delivered:
                return total
        raise RuntimeError(f"the streams still had records after {max_rounds} rounds: a function feeding itself?")
