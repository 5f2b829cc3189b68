"""Helpers of the gateway tests: fake function pools, raw-socket requests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local_stack.functions import Invocation
from local_stack.gateway import Gateway

API_KEY = "local-stack-test-key-0123456789"


def ok(event: dict) -> dict:
    return {"statusCode": 200, "body": json.dumps({"ok": True})}


@dataclass
class FakePool:
    """Stands in for a FunctionPool: records each event and answers with `respond(event)`."""

    respond: Callable[[dict], Any] = ok
    delay_s: float = 0.0
    events: list[dict] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    def invoke(self, event: dict) -> Invocation:
        self.events.append(event)
        if self.delay_s:
            time.sleep(self.delay_s)
        try:
            result = Invocation(True, self.respond(event), self.delay_s)
        except Exception as exc:  # a handler that raises: Lambda reports a function error
            result = Invocation(False, {"errorType": type(exc).__name__, "errorMessage": str(exc)}, 0.0)
        self.finished.set()
        return result


def echo(event: dict) -> dict:
    """A handler that answers with the event it got (to look at what the gateway built)."""
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}


@dataclass
class RunningGateway:
    gateway: Gateway
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send `data` as is and read until the server closes the connection (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body[: int(headers.get("content-length", len(body)))]
