"""HTTP -> API Gateway REST proxy events (v1) for every route in the template, and the Lambda proxy
response back to HTTP. Routes match the way API Gateway REST matches resources: a trailing slash is
ignored, `{name}` takes one path segment, `{proxy+}` the rest, literal segments win over variables.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .functions import FunctionPool, Invocation

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_LAMBDA_EVENT_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation payload limit
# What the template's GatewayResponses add to API Gateway's own errors.
CORS_ALLOW_HEADERS = "Content-Type,x-api-key,Idempotency-Key"


@dataclass
class Route:
    method: str
    resource: str
    pool: FunctionPool
    pattern: re.Pattern
    rank: tuple
    api_key_required: bool = False

    @classmethod
    def build(cls, method: str, resource: str, pool: FunctionPool, api_key_required: bool = False) -> Route:
        parts, rank = [], []
        for segment in resource.strip("/").split("/") if resource.strip("/") else []:
            if segment.endswith("+}"):
                parts.append(f"(?P<{segment[1:-2]}>.+)")
                rank.append(2)
            elif segment.startswith("{"):
                parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
                rank.append(1)
            else:
                parts.append(re.escape(segment))
                rank.append(0)
        pattern = re.compile("^/" + "/".join(parts) + "/*$")
        return cls(method.upper(), resource, pool, pattern, tuple(rank), api_key_required)


class Gateway:
    def __init__(
        self,
        stage: str,
        extra_get: dict[str, Callable[[str], tuple[int, str, bytes] | None]],
        *,
        api_keys: frozenset[str] = frozenset(),
        cors_allow_origin: str = "*",
    ) -> None:
        self.stage = stage
        self.routes: list[Route] = []
        self.extra_get = extra_get  # path prefix -> handler(path) for things the local stack serves itself
        # Empty: no key is checked (as a stage without a usage plan); else routes that require a key
        # answer 403 {"error": "Forbidden"} without one of these in x-api-key, as API Gateway does.
        self.api_keys = api_keys
        self.error_headers = {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": cors_allow_origin,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        }

    def add_route(self, method: str, resource: str, pool: FunctionPool, api_key_required: bool = False) -> None:
        self.routes.append(Route.build(method, resource, pool, api_key_required))
        self.routes.sort(key=lambda r: r.rank)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str] | None, bool]:
        """(route, path parameters, whether the path exists under another method)"""
        path_exists = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                if route.method in (method, "ANY"):
                    return route, m.groupdict() or None, True
                path_exists = True
        return None, None, path_exists

    def event(  # noqa: PLR0917 - the parts of one HTTP request
        self, route: Route, params, method: str, raw_path: str, query: str, headers, body: bytes, ip: str
    ) -> dict:
        multi_headers: dict[str, list[str]] = {}
        for key, value in headers:
            multi_headers.setdefault(key, []).append(value)
        multi_query: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "resource": route.resource,
            "path": raw_path,
            "httpMethod": method,
            "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params,
            "stageVariables": None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": (dict(headers).get("Host") or "127.0.0.1"),
                "extendedRequestId": uuid.uuid4().hex,
                "httpMethod": method,
                "identity": {"sourceIp": ip, "userAgent": dict(headers).get("User-Agent"), "apiKey": None},
                "path": f"/{self.stage}{raw_path}",
                "protocol": "HTTP/1.1",
                "requestId": str(uuid.uuid4()),
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "requestTimeEpoch": int(now * 1000),
                "resourceId": "local",
                "resourcePath": route.resource,
                "stage": self.stage,
            },
            "body": text if body else None,
            "isBase64Encoded": is_b64,
        }

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait

            def log_message(self, *args):
                pass

            def _handle(self) -> None:
                gateway.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        method = req.command
        length = int(req.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            req.rfile.read(length)
            return _send(req, 413, self.error_headers, _error("request body too large"))
        body = req.rfile.read(length) if length else b""
        if method == "GET":
            for prefix, serve in self.extra_get.items():
                if url.path.startswith(prefix):
                    found = serve(url.path)
                    if found:
                        status, ctype, data = found
                        return _send(req, status, {"Content-Type": ctype}, data)
        route, params, _ = self.match(method, url.path)
        if route is None:
            # API Gateway REST answers an unknown resource or method with 403 "Missing Authentication Token".
            return _send(req, 403, self.error_headers, _error("Missing Authentication Token"))
        if route.api_key_required and self.api_keys and req.headers.get("x-api-key") not in self.api_keys:
            return _send(req, 403, self.error_headers, _error("Forbidden"))
        event = self.event(
            route, params, method, url.path, url.query, list(req.headers.items()), body, req.client_address[0]
        )
        if len(json.dumps(event)) > MAX_LAMBDA_EVENT_BYTES:
            return _send(req, 413, self.error_headers, _error("request body too large"))
        result: Invocation = route.pool.invoke(event)
        if not result.ok or not isinstance(result.payload, dict) or "statusCode" not in result.payload:
            # What API Gateway answers when the integration fails.
            return _send(req, 502, self.error_headers, _error("Internal server error"))
        response = result.payload
        headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(values) if key.lower() != "set-cookie" else values[-1]
        data = response.get("body") or ""
        payload = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
        _send(req, int(response["statusCode"]), headers, payload, head=method == "HEAD")


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _send(req: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes, head: bool = False) -> None:
    req.send_response(status)
    for key, value in headers.items():
        if key.lower() not in ("content-length", "connection", "transfer-encoding"):
            req.send_header(key, str(value))
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if not head:
        req.wfile.write(body)
