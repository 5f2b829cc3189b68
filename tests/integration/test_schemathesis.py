"""schemathesis against the API's own OpenAPI document, as served at /api/openapi.json, driving the real
handlers in-process (a small WSGI adapter turns each request into an API Gateway proxy event and
routes it as template.yaml does) on moto: no operation may answer 5xx."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qsl

import schemathesis
from harness import LambdaContext, api_event, load_function
from hypothesis import HealthCheck, given, settings
from reliability import record

from devkit.routing import Route
from devkit.template import Stack

EXAMPLES_PER_OPERATION = 25
TIME_BUDGET_S = 50  # the whole run stays well under a minute


class ApiGatewayWsgi:
    """WSGI app: HTTP request -> API Gateway REST proxy event -> the template's function -> HTTP."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        for spec in Stack().functions(resolve_environment=False).values():
            if spec.routes:
                module = load_function(spec.code_uri.name)
                self.routes += [Route.build(r.method, r.path, module) for r in spec.routes]
        self.routes.sort(key=lambda r: r.rank)
        self.status_counts: dict[int, int] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        if path.startswith("/dev/"):
            path = path[len("/dev") :]  # the served document's server is the stage path
        method = environ["REQUEST_METHOD"]
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        route = next((r for r in self.routes if r.method == method and r.pattern.match(path)), None)
        if route is None:
            return self._reply(start_response, 403, {"Content-Type": "application/json"}, b'{"error": "Missing"}')
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        try:
            body, is_b64 = raw.decode("utf-8"), False
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(raw).decode(), True
        event = api_event(method, path, body=body if raw else None, query=query or None, headers=headers)
        event["resource"] = event["requestContext"]["resourcePath"] = route.resource
        event["pathParameters"] = route.pattern.match(path).groupdict() or None
        event["isBase64Encoded"] = is_b64
        response = route.target.lambda_handler(event, LambdaContext())
        out_headers = dict(response.get("headers") or {})
        for key, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(values)
        data = response.get("body") or ""
        payload = base64.b64decode(data) if response.get("isBase64Encoded") else data.encode()
        return self._reply(start_response, int(response["statusCode"]), out_headers, payload)

    def _reply(self, start_response, status: int, headers: dict, payload: bytes):
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        start_response(f"{status} X", [(k, str(v)) for k, v in headers.items() if k.lower() != "content-length"])
        return [payload]


def test_no_operation_of_the_openapi_document_answers_5xx(stack):
    app = ApiGatewayWsgi()
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    started = time.monotonic()
    cases = 0
    server_errors: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        if time.monotonic() - started > TIME_BUDGET_S:
            break

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            nonlocal cases
            response = case.call()
            cases += 1
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
                )

        run()
    assert server_errors == []
    assert cases >= len(operations)
    assert not any(status >= 500 for status in app.status_counts)
    record("fuzz: every OpenAPI operation (schemathesis, real handlers on moto)", cases)
