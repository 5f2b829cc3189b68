"""Request bytes that are not what they claim, on every route of every API function: a base64 body
(`isBase64Encoded: true`) that is not UTF-8 or not base64, a text body carrying U+FFFD (what API
Gateway passes for bytes that are not UTF-8), and query values with broken percent-encoding. Each is
a 4xx naming the problem, or the route's normal answer when it reads no body; never a 5xx or an
exception out of the handler."""

from __future__ import annotations

import base64
import json

import pytest
from harness import LambdaContext, api_event, load_function
from reliability import record

NOT_UTF8 = b'{"count": 1, "visits": [{"store_id": "RP\xff\xfe01"}]}'
GOOD_VISIT = {"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}
GOOD_JOB = json.dumps({"count": 1, "visits": [GOOD_VISIT]})
# (label, body, isBase64Encoded)
BAD_BODIES = [
    ("base64 of bytes that are not UTF-8", base64.b64encode(NOT_UTF8).decode(), True),
    ("base64 of a lone continuation byte", base64.b64encode(b"\x80").decode(), True),
    ("not base64 at all", "!!!not base64", True),
    ("text with U+FFFD outside a string", '{"count": 1, "visits": [\ufffd]}', False),
    ("text with U+FFFD inside a string", GOOD_JOB.replace("RP00001", "RP\ufffd01"), False),
]
# What API Gateway passes on for a query string with malformed escapes: decoded where it can be,
# the rest literally (or U+FFFD for bytes that are not UTF-8, as the local gateway's parse_qsl does).
BAD_QUERY_VALUES = ["%zz", "%E0%A4%A", "%", "\ufffd", "a%00b", "x" * 3000]
QUERY_NAMES = ("jobid", "limit", "next_token", "area", "storeid", "startdate", "enddate", "q", "status")


@pytest.fixture
def routes(stack):
    """Every route of the template with the module that serves it (the dashboard's too)."""
    web = load_function("web")
    out = []
    for route in stack.routes.routes:
        module = route.target or web  # Handlers loads the API functions; web has no AWS to mock
        out.append((route.method, route.resource.replace("{file}", "style.css"), module))
    return out


def call(module, method: str, path: str, *, body=None, b64=False, query=None) -> dict:
    event = api_event(method, path, body=body, query=query)
    event["isBase64Encoded"] = b64
    return module.lambda_handler(event, LambdaContext())


@pytest.mark.parametrize("bad", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_submit_body_that_is_not_utf8_is_400_not_valid_json_and_writes_nothing(stack, bad):
    _label, body, b64 = bad
    response = call(stack.submit, "POST", "/api/submit", body=body, b64=b64)
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"]) == {"error": "body: not valid JSON"}
    assert stack.items() == [] and stack.queue_depth() == 0
    record("input: body not UTF-8 (base64 or U+FFFD) or not base64, every route", 1)


def test_a_base64_body_that_is_utf8_json_is_still_accepted(stack):
    response = call(stack.submit, "POST", "/api/submit", body=base64.b64encode(GOOD_JOB.encode()).decode(), b64=True)
    assert response["statusCode"] == 201, response


def test_every_route_answers_bad_bodies_without_a_5xx(routes):
    cases = 0
    for method, path, module in routes:
        for label, body, b64 in BAD_BODIES:
            response = call(module, method, path, body=body, b64=b64)
            assert response["statusCode"] < 500, (method, path, label, response)
            if response["statusCode"] >= 400 and "json" in str(response.get("headers")):
                assert set(json.loads(response["body"])) == {"error"}
            cases += 1
    record("input: body not UTF-8 (base64 or U+FFFD) or not base64, every route", cases)


def test_every_route_answers_broken_percent_encoding_in_queries_without_a_5xx(routes):
    cases = 0
    for method, path, module in routes:
        for value in BAD_QUERY_VALUES:
            response = call(module, method, path, query=dict.fromkeys(QUERY_NAMES, value))
            assert response["statusCode"] < 500, (method, path, value, response)
            cases += 1
    record("input: query values with broken percent-encoding or U+FFFD, every route", cases)
