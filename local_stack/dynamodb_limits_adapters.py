"""Two ways to put the DynamoDB limits model in front of moto, with the same engine and the same
bytes on the wire:

- `LimitsMiddleware`: WSGI, in the local stack's moto process (`MotoApp` wires it in). It also
  serves `GET /_local/limits` (counters, consumption, hottest partitions) and `DELETE
  /_local/limits` (reset).
- `InProcessLimits`: botocore hooks for `moto.mock_aws()`, so a benchmark or a test can run the
  handlers in-process with the same limits. `attach()` puts a `before-send` handler in the place
  of moto's own (botocore runs every `before-send` handler, so moto's must go): it answers
  refusals itself, hands admitted requests (and everything it does not model) to moto, and leaves
  botocore's retries as they are (a throttled request is retried like one from AWS).
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .dynamodb_limits import DynamoDBLimits
from .dynamodb_limits_engine import MODELLED, LimitsEngine, Locked, region_of
from .dynamodb_requests import RawResponse, json_response

LIMITS_PATH = "/_local/limits"
DYNAMODB_TARGET = "DynamoDB_20120810."
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]


def _reason(status: int) -> str:
    return {200: "OK", 204: "No Content", 400: "Bad Request"}.get(status, "Status")


class LimitsMiddleware:
    """Runs DynamoDB requests through the limits engine; `moto` is the app behind moto's lock,
    `locked(write)` takes that lock (the engine decides when: conflicts are judged at arrival, the
    rest under the lock)."""

    def __init__(self, limits: DynamoDBLimits, moto: WsgiApp, locked: Locked) -> None:
        self.limits = limits
        self.engine = LimitsEngine(limits)
        self._moto = moto
        self._locked = locked

    def serves(self, environ: dict) -> bool:
        if environ.get("PATH_INFO") == LIMITS_PATH:
            return True
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return target.startswith(DYNAMODB_TARGET) and target[len(DYNAMODB_TARGET) :] in MODELLED

    def __call__(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        if environ.get("PATH_INFO") == LIMITS_PATH:
            return self._serve_limits(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        operation = environ["HTTP_X_AMZ_TARGET"][len(DYNAMODB_TARGET) :]

        def execute(request_body: bytes) -> RawResponse:
            inner = dict(environ, CONTENT_LENGTH=str(len(request_body)))
            inner["wsgi.input"] = io.BytesIO(request_body)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
                captured["status"], captured["headers"] = int(status.split(" ", 1)[0]), dict(headers)

            data = b"".join(self._moto(inner, capture))
            return captured["status"], captured["headers"], data

        status, headers, data = self.engine.handle(
            operation, body, region_of(environ.get("HTTP_AUTHORIZATION", "")), execute, self._locked
        )
        start_response(f"{status} {_reason(status)}", list(headers.items()))
        return [data]

    def _serve_limits(self, environ: dict, start_response: StartResponse) -> list[bytes]:
        if environ.get("REQUEST_METHOD") == "DELETE":
            self.limits.reset()
            start_response("204 No Content", [])
            return []
        data = json.dumps(self.limits.snapshot()).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


def limits_off_response(start_response: StartResponse) -> list[bytes]:
    """`GET /_local/limits` when the local stack runs with --no-aws-limits."""
    data = json.dumps({"enabled": False}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class InProcessLimits:
    """The limits model for boto3 clients served in-process by `moto.mock_aws()`.

    `attach(target)` takes a client, a boto3 Session or a botocore Session (clients copy their
    session's hooks when they are created, so attach a session before creating its clients). Outside
    `mock_aws()` it steps aside, as moto's handler does.
    """

    HANDLER_ID = "retail-pulse-dynamodb-limits"

    def __init__(self, limits: DynamoDBLimits | None = None) -> None:
        self.limits = limits or DynamoDBLimits()
        self.engine = LimitsEngine(self.limits)
        self._lock = threading.RLock()  # moto in-process is not thread-safe either

    @contextlib.contextmanager
    def _locked(self, write: bool):
        with self._lock:
            yield

    @staticmethod
    def _events(target: Any) -> Any:
        if hasattr(target, "meta"):  # a client
            return target.meta.events
        if hasattr(target, "_session"):  # a boto3 Session
            return target._session.get_component("event_emitter")
        return target.get_component("event_emitter")  # a botocore Session

    def attach(self, target: Any) -> Any:
        from moto.core.models import botocore_stubber

        events = self._events(target)
        events.unregister("before-send", botocore_stubber)
        events.register("before-send", self._before_send, unique_id=self.HANDLER_ID)
        return target

    def detach(self, target: Any) -> None:
        from moto.core.models import botocore_stubber

        events = self._events(target)
        events.unregister("before-send", unique_id=self.HANDLER_ID)
        events.register("before-send", botocore_stubber)

    def _before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSPreparedRequest, AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.models import botocore_stubber

        target = request.headers.get("X-Amz-Target", "")
        target = target.decode() if isinstance(target, bytes) else target
        operation = target[len(DYNAMODB_TARGET) :] if target.startswith(DYNAMODB_TARGET) else ""
        if operation not in MODELLED or not botocore_stubber.enabled:
            return botocore_stubber(event_name=event_name, request=request, **kwargs)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body

        def execute(request_body: bytes) -> RawResponse:
            headers = dict(request.headers.items())
            headers["Content-Length"] = str(len(request_body))
            prepared = AWSPreparedRequest(request.method, request.url, headers, request_body, stream_output=False)
            answer = botocore_stubber.process_request(prepared)
            if answer is None:
                return json_response(500, {"__type": "InternalFailure", "message": "moto did not answer"})
            status, moto_headers, data = answer
            return status, dict(moto_headers), data.encode() if isinstance(data, str) else data

        authorization = request.headers.get("Authorization", "")
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        status, headers, data = self.engine.handle(operation, body, region_of(authorization), execute, self._locked)
        return AWSResponse(request.url, status, headers, MockRawResponse(data))
