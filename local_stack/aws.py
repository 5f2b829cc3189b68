"""One local AWS endpoint: our SQS for `X-Amz-Target: AmazonSQS.*`, moto (DynamoDB, S3) for the rest.

Functions reach it through the standard `AWS_ENDPOINT_URL`, so their code has no local branches.
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from .sqs import SqsError, SqsService


class _QuietHandler(WSGIRequestHandler):
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "DescribeTimeToLive", "ListTables"}


class ReadWriteLock:
    """moto is not thread-safe: writes run alone, reads run together. Writers queue in FIFO order;
    a read waits only for the write in progress, so a status request is not stuck behind a queue
    of batch writes (reads are far rarer than writes here, so writers cannot starve)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._next_ticket = 0
        self._serving = 0

    @contextlib.contextmanager
    def reading(self):
        with self._condition:
            while self._writing:
                self._condition.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextlib.contextmanager
    def writing(self):
        with self._condition:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving or self._writing or self._readers:
                self._condition.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._serving += 1
                self._condition.notify_all()


def is_read(environ: dict) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB_"):
        return target.rsplit(".", 1)[-1] in DYNAMODB_READS
    return not target and environ.get("REQUEST_METHOD") in ("GET", "HEAD")  # S3


class AwsEndpoint:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        from . import moto_patches

        moto_patches.install()
        self._moto = DomainDispatcherApplication(create_backend_app)
        # moto is not thread-safe (lost ADD updates under concurrent requests): one request at a time.
        self._moto_lock = ReadWriteLock()
        self._server = make_server(host, port, self._app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://{host}:{self._server.port}"
        self.sqs = SqsService(self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-endpoint", daemon=True)
        self._faults: list[dict] = []
        self._faults_lock = threading.Lock()

    def start(self) -> AwsEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject_fault(self, operation: str, code: str, count: int, status: int = 400) -> None:
        """Answer the next `count` calls of `operation` (e.g. "TransactWriteItems") with error `code`."""
        with self._faults_lock:
            self._faults.append({"operation": operation, "code": code, "count": count, "status": status})

    def _take_fault(self, target: str) -> dict | None:
        operation = target.rsplit(".", 1)[-1]
        with self._faults_lock:
            for fault in self._faults:
                if fault["operation"] == operation and fault["count"] > 0:
                    fault["count"] -= 1
                    return fault
        return None

    def _app(self, environ: dict, start_response) -> list[bytes]:
        if environ.get("PATH_INFO") == "/_local/faults" and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            self.inject_fault(**json.loads(environ["wsgi.input"].read(length)))
            start_response("204 No Content", [])
            return []
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        fault = self._take_fault(target) if target else None
        if fault:
            data = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{fault['code']}", "message": "injected"})
            start_response(f"{fault['status']} Injected", [("Content-Type", "application/x-amz-json-1.0")])
            return [data.encode()]
        if target.startswith("AmazonSQS."):
            return self._sqs(environ, start_response, target.split(".", 1)[1])
        with self._moto_lock.reading() if is_read(environ) else self._moto_lock.writing():
            return list(self._moto(environ, start_response))

    def _sqs(self, environ: dict, start_response, operation: str) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(length) or b"{}")
        try:
            status, body = "200 OK", self.sqs.handle(operation, params)
        except SqsError as exc:
            status = f"{exc.status} Bad Request"
            body = {"__type": f"com.amazonaws.sqs#{exc.code}", "message": exc.message}
        except (KeyError, ValueError, TypeError) as exc:
            status, body = "400 Bad Request", {"__type": "com.amazonaws.sqs#InvalidAttributeValue", "message": str(exc)}
        data = json.dumps(body).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))]
        start_response(status, headers)
        return [data]
