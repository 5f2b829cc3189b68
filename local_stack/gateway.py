"""HTTP -> API Gateway REST proxy events (v1) for every route in the template, and the Lambda proxy
response back to HTTP. Routes match the way API Gateway REST matches resources: a trailing slash is
ignored, `{name}` takes one path segment, `{proxy+}` the rest, literal segments win over variables.

As a deployed stage: paths are served with and without the stage prefix (`/dev/api/docs` and
`/api/docs`), CORS preflights are answered from the template's `Cors`, API Gateway's own errors take
the shape of its `GatewayResponses`, and its limits hold: 10 MB bodies, Lambda's 6 MB event and
response, the 29 s integration timeout.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from devkit.routing import Route, RouteTable
from devkit.template import CorsSpec, RestApiSpec

from . import gateway_responses as kinds
from .functions import Invocation
from .gateway_responses import GatewayError, GatewayResponses
from .http_input import BadRequest, TooLarge, read_body
from .proxy_event import LOCAL_DEFAULT_API_KEY_ID, Identity, api_key_id, build_event

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation limit, event and response alike
INTEGRATION_TIMEOUT_S = 29.0  # API Gateway REST's default (and, for most accounts, maximum) integration timeout
BODY_READ_TIMEOUT_S = 10.0  # a body that stops arriving for this long is answered 400
# Connections waiting to be accepted: clients open many at once (a browser, a load test), and a full
# backlog drops or resets connects. The kernel caps it at net.core.somaxconn.
LISTEN_BACKLOG = 1024
ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

ExtraGet = Callable[[str], tuple[int, str, bytes] | None]


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True  # a connection's thread never holds up shutdown


class Gateway:
    def __init__(
        self,
        stage: str,
        extra_get: dict[str, ExtraGet],
        *,
        api: RestApiSpec | None = None,
        api_keys: frozenset[str] = frozenset(),
        integration_timeout: float = INTEGRATION_TIMEOUT_S,
        body_read_timeout: float = BODY_READ_TIMEOUT_S,
    ) -> None:
        self.stage = stage
        self.table = RouteTable()
        self.extra_get = extra_get  # path prefix -> handler(path) for things the local stack serves itself
        # Empty: no key is checked (as a stage without a usage plan); else routes that require a key
        # answer 403 without one of these in x-api-key, as API Gateway does.
        self.api_keys = api_keys
        self.cors: CorsSpec | None = api.cors if api else None
        self.preflight_needs_key = bool(api and api.preflight_needs_key)
        self.binary_media_types = list(api.binary_media_types) if api else []
        self.responses = GatewayResponses(api.gateway_responses if api else None)
        self.integration_timeout = integration_timeout
        self.body_read_timeout = body_read_timeout

    def add_route(self, method: str, resource: str, pool: Any, api_key_required: bool = False) -> None:
        self.table.add(method, resource, pool, api_key_required)

    # -- routing ----------------------------------------------------------------------------
    @property
    def routes(self) -> list[Route]:
        return self.table.routes

    def resource_of(self, path: str) -> str | None:
        return self.table.resource_of(path)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None, bool]:
        return self.table.match(method, path)

    def stage_paths(self, path: str) -> tuple[str, str]:
        """(the path the routes see, requestContext.path). The stage URL serves `/<stage>/...` with
        the stage stripped from `path` and kept in requestContext.path; a path without the prefix is
        served as the same stage (so both `/api/docs` and `/dev/api/docs` work, and links a function
        builds from requestContext.path resolve)."""
        prefix = f"/{self.stage}"
        if path == prefix or path.startswith(prefix + "/"):
            inner = path[len(prefix) :] or "/"
            # A resource named like the stage (stage "api", path /api/health) still routes unprefixed.
            if self.resource_of(inner) is not None or self.resource_of(path) is None:
                return inner, path
        return path, prefix + path

    def preflight_headers(self, path: str) -> dict[str, str]:
        """What SAM's generated OPTIONS method (a mock integration) answers for `path`'s resource."""
        cors = self.cors
        assert cors is not None
        methods = cors.allow_methods
        if methods is None:  # SAM lists the resource's own methods (all for ANY) and OPTIONS
            own = {r.method for r in self.routes if r.resource == self.resource_of(path)}
            methods = ",".join(sorted(ALL_METHODS if "ANY" in own else own | {"OPTIONS"}))
        headers = {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": cors.allow_origin,
            "Access-Control-Allow-Methods": methods,
        }
        if cors.allow_headers is not None:
            headers["Access-Control-Allow-Headers"] = cors.allow_headers
        if cors.max_age is not None:
            headers["Access-Control-Max-Age"] = cors.max_age
        if cors.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    # -- HTTP -------------------------------------------------------------------------------
    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

        return _Server((host, port), Handler)

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        try:
            self._handle(req)
        except BadRequest as exc:
            self._error(req, self.responses.render(kinds.DEFAULT_4XX, str(exc), 400), close=True)
        except TooLarge:
            self._error(req, self.responses.render(kinds.REQUEST_TOO_LARGE, "Request Too Long"), close=True)
        except (BrokenPipeError, ConnectionResetError):
            req.close_connection = True  # the client left; nobody to answer
        except Exception:
            # A bug here must still answer (as API Gateway's own 5xx would), not drop the connection.
            traceback.print_exc(file=sys.stderr)
            self._error(req, self.responses.render(kinds.DEFAULT_5XX, "Internal server error"), close=True)

    def _handle(self, req: BaseHTTPRequestHandler) -> None:  # noqa: PLR0911 - one return per answer
        url = urlsplit(req.path)
        method = req.command
        body = read_body(req, MAX_REQUEST_BYTES, self.body_read_timeout)
        if method == "GET":
            for prefix, serve in self.extra_get.items():
                if url.path.startswith(prefix):
                    found = serve(url.path)
                    if found:
                        status, ctype, data = found
                        return _send(req, status, [("Content-Type", ctype)], data)
        path, stage_path = self.stage_paths(url.path)
        route, params, is_resource = self.match(method, path)
        if route is None and method == "OPTIONS" and is_resource and self.cors is not None:
            # The CORS preflight: answered by API Gateway itself, no function runs.
            if self.preflight_needs_key and not self._key_ok(req):
                return self._error(req, self.responses.render(kinds.INVALID_API_KEY, "Forbidden"))
            return _send(req, 200, list(self.preflight_headers(path).items()), b"{}")
        if route is None:
            # API Gateway REST answers an unknown resource or method with 403 "Missing Authentication Token".
            return self._error(
                req, self.responses.render(kinds.MISSING_AUTHENTICATION_TOKEN, "Missing Authentication Token")
            )
        if route.api_key_required and not self._key_ok(req):
            return self._error(req, self.responses.render(kinds.INVALID_API_KEY, "Forbidden"))
        event = build_event(
            route.resource,
            params,
            method,
            path,
            stage_path,
            url.query,
            list(req.headers.items()),
            body,
            self._identity(req, route),
            self.stage,
            self.binary_media_types,
        )
        # Lambda refuses a synchronous event over 6 MB; API Gateway then answers 413 "Request Too Long".
        if _json_size(event) > MAX_LAMBDA_PAYLOAD_BYTES:
            return self._error(req, self.responses.render(kinds.REQUEST_TOO_LARGE, "Request Too Long"))
        result = self._invoke(route, event)
        if result is None:
            _log(route, f"integration timed out after {self.integration_timeout:g} s: 504 (the function runs on)")
            return self._error(req, self.responses.render(kinds.INTEGRATION_TIMEOUT, "Endpoint request timed out"))
        response = _proxy_response(result) if result.ok else None
        if response is None:
            # A function error, a malformed proxy response or one over Lambda's 6 MB: API Gateway's 502.
            if result.ok:
                _log(route, "malformed Lambda proxy response (or over 6 MB): 502")
            return self._error(req, self.responses.render(kinds.DEFAULT_5XX, "Internal server error", 502))
        status, headers, payload = response
        _send(req, status, headers, payload, head=method == "HEAD")

    def _key_ok(self, req: BaseHTTPRequestHandler) -> bool:
        return not self.api_keys or req.headers.get("x-api-key") in self.api_keys

    def _identity(self, req: BaseHTTPRequestHandler, route: Route) -> Identity:
        identity = Identity(source_ip=req.client_address[0], user_agent=req.headers.get("User-Agent"))
        # API Gateway fills the key (and its id) only for methods that require one.
        if route.api_key_required:
            key = req.headers.get("x-api-key")
            if self.api_keys and key:
                identity.api_key, identity.api_key_id = key, api_key_id(key)
            else:
                identity.api_key_id = LOCAL_DEFAULT_API_KEY_ID
        return identity

    def _invoke(self, route: Route, event: dict) -> Invocation | None:
        """The function's result, or None at the integration timeout. The invocation goes on in its
        worker after that, as a Lambda does after API Gateway gave up on it."""
        future: Future[Invocation] = Future()

        def run() -> None:
            try:
                future.set_result(route.target.invoke(event))
            except Exception as exc:
                future.set_result(Invocation(False, {"errorType": type(exc).__name__, "errorMessage": str(exc)}, 0.0))

        # A daemon thread, not an executor: a function still running must not hold up the stack's exit.
        threading.Thread(target=run, name=f"invoke-{route.resource}", daemon=True).start()
        try:
            return future.result(timeout=self.integration_timeout)
        except TimeoutError:
            return None

    def _error(self, req: BaseHTTPRequestHandler, error: GatewayError, close: bool = False) -> None:
        headers = list(error.headers.items())
        if close:
            # The rest of the request may still be on the wire: it cannot be read as the next one.
            req.close_connection = True
            headers.append(("Connection", "close"))
        _send(req, error.status, headers, error.body)


def _log(route: Route, message: str) -> None:
    # Where API Gateway's execution log would say why the client got a 5xx.
    print(f"[{route.method} {route.resource}] {message}", file=sys.stderr, flush=True)


def _json_size(value: Any) -> int:
    # The size Lambda counts: the UTF-8 JSON document (ensure_ascii would count "é" as 6 bytes).
    return len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", errors="surrogatepass"))


def _proxy_response(result: Invocation) -> tuple[int, list[tuple[str, str]], bytes] | None:  # noqa: PLR0911
    """The HTTP response of a Lambda proxy result, or None where API Gateway answers 502."""
    payload = result.payload
    if not isinstance(payload, dict) or _json_size(payload) > MAX_LAMBDA_PAYLOAD_BYTES:
        return None
    try:
        status = int(payload["statusCode"])
    except (KeyError, TypeError, ValueError):
        return None
    single = payload.get("headers") or {}
    multi = payload.get("multiValueHeaders") or {}
    body = payload.get("body") or ""
    if not isinstance(single, dict) or not isinstance(multi, dict) or not isinstance(body, str):
        return None
    if not 100 <= status <= 599 or not all(isinstance(v, list) for v in multi.values()):
        return None
    # API Gateway merges headers and multiValueHeaders into one list per name (each value its own
    # header line, so several Set-Cookie survive), a value given in both only once.
    headers: list[tuple[str, str]] = []
    for key, values in [*((k, [v]) for k, v in single.items()), *multi.items()]:
        for value in values:
            if (key, str(value)) not in headers:
                headers.append((key, str(value)))
    if payload.get("isBase64Encoded"):
        try:
            return status, headers, base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return status, headers, body.encode()


def _send(
    req: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes, head: bool = False
) -> None:
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        req.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "transfer-encoding") and (
                key.lower() != "connection" or value == "close"
            ):
                req.send_header(key, str(value))
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if not head:
            req.wfile.write(body)
