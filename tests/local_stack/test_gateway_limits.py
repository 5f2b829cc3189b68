"""API Gateway's and Lambda's limits, answered in the shape of the template's GatewayResponses:
Lambda's 6 MB event (413) and response (502), a failing or malformed function (502), the
integration timeout (504, the function running on)."""

from __future__ import annotations

import dataclasses
import time

import requests
from gateway_kit import FakePool

from devkit.template import GatewayResponseSpec
from local_stack.gateway import MAX_LAMBDA_PAYLOAD_BYTES

SUBMIT = ("POST", "/api/submit")
HEALTH = ("GET", "/api/health")


def _assert_gateway_error(response: requests.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}  # the template's DEFAULT_4XX / DEFAULT_5XX template
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_an_event_over_lambdas_6_mb_is_413_and_runs_nothing(start_gateway):
    pool = FakePool()
    gw = start_gateway({SUBMIT: pool})
    # Under API Gateway's 10 MB, over Lambda's 6 MB once in the event.
    response = requests.post(gw.url + "/api/submit", data=b"x" * (MAX_LAMBDA_PAYLOAD_BYTES + 1), timeout=30)
    _assert_gateway_error(response, 413, "Request Too Long")
    assert pool.events == []
    # Just under the limit (the event's other fields take the rest): the function runs.
    fits = requests.post(gw.url + "/api/submit", data=b"x" * (MAX_LAMBDA_PAYLOAD_BYTES - 20_000), timeout=30)
    assert fits.status_code == 200 and len(pool.events) == 1


def test_a_response_over_lambdas_6_mb_is_502(start_gateway):
    big = FakePool(lambda event: {"statusCode": 200, "body": "y" * (MAX_LAMBDA_PAYLOAD_BYTES + 1)})
    gw = start_gateway({HEALTH: big})
    _assert_gateway_error(requests.get(gw.url + "/api/health", timeout=30), 502, "Internal server error")


def test_a_function_error_or_malformed_response_is_502(start_gateway):
    def boom(event):
        raise RuntimeError("handler failed")

    bad_responses = [
        {"body": "no status"},
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "body": "not base64!", "isBase64Encoded": True},
        "just a string",
    ]
    routes = {("GET", f"/bad/{i}"): FakePool(lambda event, r=r: r) for i, r in enumerate(bad_responses)}
    gw = start_gateway({**routes, ("GET", "/boom"): FakePool(boom)})
    for _, path in [*routes, ("GET", "/boom")]:
        _assert_gateway_error(requests.get(gw.url + path, timeout=10), 502, "Internal server error")


def test_the_integration_timeout_answers_504_and_the_function_runs_on(start_gateway):
    slow = FakePool(delay_s=1.0)
    gw = start_gateway({HEALTH: slow}, integration_timeout=0.2)
    started = time.monotonic()
    response = requests.get(gw.url + "/api/health", timeout=10)
    elapsed = time.monotonic() - started
    _assert_gateway_error(response, 504, "Endpoint request timed out")
    assert elapsed < 0.9  # answered at the timeout, not when the function ended
    assert not slow.finished.is_set()
    assert slow.finished.wait(5)  # ... which it still does, in its worker


def test_a_response_type_of_its_own_wins_over_the_default(start_gateway, template_api):
    responses = {
        **template_api.gateway_responses,
        "INTEGRATION_TIMEOUT": GatewayResponseSpec(
            status_code=503,
            headers={"Retry-After": "1"},
            templates={"application/json": '{"timeout": $context.error.messageString}'},
        ),
    }
    api = dataclasses.replace(template_api, gateway_responses=responses)
    gw = start_gateway({HEALTH: FakePool(delay_s=0.5)}, api=api, integration_timeout=0.1)
    response = requests.get(gw.url + "/api/health", timeout=10)
    assert (response.status_code, response.json()) == (503, {"timeout": "Endpoint request timed out"})
    assert response.headers["Retry-After"] == "1"


def test_without_gateway_responses_errors_are_api_gateways_own_shape(start_gateway, template_api):
    gw = start_gateway({HEALTH: FakePool()}, api=dataclasses.replace(template_api, gateway_responses={}))
    response = requests.get(gw.url + "/api/nothing", timeout=10)
    assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_headers_and_multi_value_headers_merge_one_line_per_value(start_gateway):
    def cookies(event):
        return {
            "statusCode": 200,
            "headers": {"X-One": "1", "Set-Cookie": "a=1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": "",
        }

    gw = start_gateway({HEALTH: FakePool(cookies)})
    response = requests.get(gw.url + "/api/health", timeout=10)
    assert response.headers["X-One"] == "1"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
