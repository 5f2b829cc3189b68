"""The local AWS endpoints: moto (DynamoDB, S3, and whatever else the template uses) in a process of
its own, and our SQS in the local stack's process (where the event source mapping reads it).

Functions reach them through the SDK's standard endpoint settings (`AWS_ENDPOINT_URL`, and
`AWS_ENDPOINT_URL_SQS` for SQS), so their code has no local branches. moto gets its own process so
its Python work (every batch write goes through it) does not hold the GIL the API gateway and the
queue need.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from . import moto_state, presigned
from .dynamodb_limits import DynamoDBLimits, LimitsConfig
from .dynamodb_limits_adapters import LIMITS_PATH, LimitsMiddleware, limits_off_response
from .keepalive import KeepAliveServer
from .sqs import SqsError, SqsService

STATE_PATH = "/_local/state"  # POST: save moto's state to its file (when it changed since the last save)


DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "DescribeTimeToLive", "ListTables"}


PASSING_READERS = 4  # at most this many waiting readers go in ahead of queued writers (ReadWriteLock)


class ReadWriteLock:
    """moto is not thread-safe: writes run alone, reads run together. Everyone waits in one line;
    readers next to each other in the line go in together, and a reader arriving while a writer
    waits queues behind that writer (letting readers pass a waiting writer let 50 pollers of the
    status route starve the batch writes: some reader always held the lock).

    One exception, for light read traffic: when a writer leaves and at most PASSING_READERS readers
    wait in the line, they all go in before the next writer. A status poll then waits for the
    write in progress, not for every result write queued ahead of it (50-110 ms behind processing's
    writes; on DynamoDB a read of one item never waits for writes of others). A crowd of readers
    (50 pollers) keeps its place in the line, so it cannot take moto's one line from the writes
    (letting every waiting reader pass at each write's end slowed a job beside 50 pollers 5x).

    Each waiter sleeps on a gate of its own, opened only when its turn comes: waking every waiter
    on each release (one Condition) cost the local moto a fifth of its CPU under load."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._line: deque[tuple[bool, threading.Lock]] = deque()  # (writes, gate), in arrival order
        self._readers = 0
        self._writing = False

    def _admit(self) -> None:
        """Opens the gates of those at the head of the line who may go in now (under the mutex)."""
        while self._line and not self._writing:
            write, gate = self._line[0]
            if write and self._readers:
                return
            self._line.popleft()
            if write:
                self._writing = True
            else:
                self._readers += 1
            gate.release()

    def _admit_readers(self) -> None:
        """A writer has left: the readers in the line go in, wherever they wait, if they are few
        (under the mutex)."""
        readers = [gate for write, gate in self._line if not write]
        if 0 < len(readers) <= PASSING_READERS:
            self._line = deque(entry for entry in self._line if entry[0])
            self._readers += len(readers)
            for gate in readers:
                gate.release()

    @contextlib.contextmanager
    def _holding(self, write: bool):
        gate = threading.Lock()
        gate.acquire()
        with self._mutex:
            self._line.append((write, gate))
            self._admit()
        gate.acquire()  # opened by _admit when this waiter's turn comes
        try:
            yield
        finally:
            with self._mutex:
                if write:
                    self._writing = False
                    self._admit_readers()
                else:
                    self._readers -= 1
                self._admit()

    def reading(self):
        return self._holding(write=False)

    def writing(self):
        return self._holding(write=True)


def is_read(environ: dict) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        return target.rsplit(".", 1)[-1] in DYNAMODB_READS
    return not target and environ.get("REQUEST_METHOD") in ("GET", "HEAD")  # S3


class MotoApp:
    """moto's WSGI app behind a read/write lock, with fault injection for tests and, unless `limits`
    is None, the model of DynamoDB's limits in front of it (`dynamodb_limits`). With a `state_file`,
    moto's state is restored from it first and saved to it on `POST /_local/state`."""

    def __init__(self, limits: LimitsConfig | None = None, state_file: Path | None = None) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        from . import moto_patches

        moto_patches.install()
        self.state_file = state_file
        self.restored = moto_state.restore(state_file) if state_file else None
        self._changed = False  # a write completed since the last save
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._lock = ReadWriteLock()
        self._faults: list[dict] = []
        self._faults_lock = threading.Lock()
        self.limits = LimitsMiddleware(DynamoDBLimits(limits), self._moto, self._locked) if limits else None

    def save_state(self) -> dict:
        if self.state_file is None or not self._changed:
            return {"saved": False}
        started = time.monotonic()
        size = moto_state.save(self.state_file, self._writing_for_save)
        return {"saved": True, "bytes": size, "seconds": round(time.monotonic() - started, 3)}

    @contextlib.contextmanager
    def _writing_for_save(self):
        with self._lock.writing():
            self._changed = False  # under the lock: a write after the save marks it changed again
            yield

    def _locked(self, write: bool):
        return self._lock.writing() if write else self._lock.reading()

    def inject_fault(
        self, operation: str, code: str, count: int, status: int = 400, matching: str | None = None
    ) -> None:
        """Answer the next `count` calls of `operation` (e.g. "TransactWriteItems") with error `code`;
        with `matching`, only calls whose request body contains that text (e.g. "IMG#": result items)."""
        with self._faults_lock:
            self._faults.append(
                {"operation": operation, "code": code, "count": count, "status": status, "matching": matching}
            )

    def _take_fault(self, target: str, environ: dict) -> dict | None:
        operation = target.rsplit(".", 1)[-1]
        with self._faults_lock:
            faults = [f for f in self._faults if f["operation"] == operation and f["count"] > 0]
        if not faults:
            return None
        body = b""
        if any(f["matching"] for f in faults):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
        with self._faults_lock:
            for fault in faults:
                if fault["count"] > 0 and (not fault["matching"] or fault["matching"].encode() in body):
                    fault["count"] -= 1
                    return fault
        return None

    def __call__(self, environ: dict, start_response) -> list[bytes]:  # noqa: PLR0911 - one answer per kind
        if environ.get("PATH_INFO") == "/_local/faults":
            if environ.get("REQUEST_METHOD") == "DELETE":
                with self._faults_lock:
                    self._faults.clear()
            else:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                self.inject_fault(**json.loads(environ["wsgi.input"].read(length)))
            start_response("204 No Content", [])
            return []
        if environ.get("PATH_INFO") == STATE_PATH and environ.get("REQUEST_METHOD") == "POST":
            data = json.dumps(self.save_state()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        fault = self._take_fault(target, environ) if target else None
        if fault:
            error = {"__type": f"com.amazonaws.dynamodb.v20120810#{fault['code']}", "message": "injected"}
            start_response(f"{fault['status']} Injected", [("Content-Type", "application/x-amz-json-1.0")])
            return [json.dumps(error).encode()]
        if self.limits is None and environ.get("PATH_INFO") == LIMITS_PATH:
            return limits_off_response(start_response)
        # A browser's CORS preflight carries the URL's query but no credentials: S3 answers it from the
        # bucket's CORS rules alone.
        if not target and environ.get("REQUEST_METHOD") != "OPTIONS" and presigned.is_presigned(environ):
            refused = presigned.check(environ)  # what S3 checks and moto does not: expiry, signature
            if refused:
                status, body = refused
                start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
                return [body]
        read = is_read(environ)
        try:
            if self.limits is not None and self.limits.serves(environ):
                return self.limits(environ, start_response)
            with self._lock.reading() if read else self._lock.writing():
                return list(self._moto(environ, start_response))
        finally:
            if not read:
                self._changed = True  # after the write: a save under the lock before it includes it


def _serve_moto(host: str, port: int, conn, limits: LimitsConfig | None, state_file: Path | None) -> None:
    app = MotoApp(limits, state_file)
    server = KeepAliveServer(host, port, app)
    conn.send((server.port, app.restored))

    def exit_with_parent() -> None:
        # The pipe closes when the local stack exits, however it exits (even SIGKILL): so do we.
        with contextlib.suppress(EOFError, OSError):
            conn.recv()
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="parent-watch", daemon=True).start()
    server.serve_forever()


class SqsApp:
    """Our SQS over boto3's JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`)."""

    def __init__(self, sqs: SqsService) -> None:
        self.sqs = sqs

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(length) or b"{}")
        try:
            if not target.startswith("AmazonSQS."):
                raise SqsError("UnsupportedOperation", "this endpoint serves SQS only")
            status, body = "200 OK", self.sqs.handle(target.split(".", 1)[1], params)
        except SqsError as exc:
            status = f"{exc.status} Bad Request"
            body = {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
        except (KeyError, ValueError, TypeError) as exc:
            status, body = "400 Bad Request", {"__type": "com.amazonaws.sqs#InvalidAttributeValue", "message": str(exc)}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])
        return [data]


class AwsEndpoint:
    """`limits`: the DynamoDB limits model's parameters, or None for moto as it is. `moto_state_file`:
    where moto's state is restored from and saved to (`save_moto_state`), or None to keep none."""

    def __init__(
        self, host: str = "127.0.0.1", limits: LimitsConfig | None = None, moto_state_file: Path | None = None
    ) -> None:
        self.limits = limits
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._moto_process = ctx.Process(
            target=_serve_moto, args=(host, 0, child, limits, moto_state_file), daemon=True, name="moto"
        )
        self._moto_process.start()
        sqs_app = SqsApp(SqsService(""))
        self._sqs_server = KeepAliveServer(host, 0, sqs_app)
        self.sqs_url = f"http://{host}:{self._sqs_server.port}"
        self.sqs = sqs_app.sqs
        self.sqs.base_url = self.sqs_url
        if not parent.poll(120):
            raise RuntimeError("moto did not start")
        moto_port, self.moto_restored = parent.recv()
        self.moto_url = f"http://{host}:{moto_port}"
        self._moto_pipe = parent  # kept open for the moto process's lifetime (it exits when this closes)
        self._thread = threading.Thread(target=self._sqs_server.serve_forever, name="sqs", daemon=True)

    def start(self) -> AwsEndpoint:
        self._thread.start()
        return self

    def environment(self) -> dict[str, str]:
        """What a function needs to reach these endpoints through the SDK's standard settings."""
        return {"AWS_ENDPOINT_URL": self.moto_url, "AWS_ENDPOINT_URL_SQS": self.sqs_url}

    def save_moto_state(self) -> dict:
        """Has the moto process save its state now (if it changed): {"saved", "bytes", "seconds"}."""
        import requests

        response = requests.post(self.moto_url + STATE_PATH, timeout=600)
        response.raise_for_status()
        return response.json()

    def client(self, service: str, **kwargs: Any):
        import boto3

        url = self.sqs_url if service == "sqs" else self.moto_url
        credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}
        return boto3.client(service, endpoint_url=url, **credentials, **kwargs)

    def stop(self) -> None:
        self._sqs_server.shutdown()
        self._sqs_server.server_close()
        self._moto_process.kill()
        self._moto_process.join(timeout=5)
