"""What the functions receive: the caller's API key and its id, and bodies that are not UTF-8."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import requests
from gateway_kit import API_KEY, FakePool, echo

from local_stack.proxy_event import LOCAL_DEFAULT_API_KEY_ID, api_key_id, event_body

SUBMIT = ("POST", "/api/submit")
DOCS = ("GET", "/api/docs")


def _identity(gw, method: str, path: str, headers: dict | None = None) -> dict:
    response = requests.request(method, gw.url + path, headers=headers or {}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["requestContext"]["identity"]


def test_a_checked_key_and_its_stable_id_reach_the_function(start_gateway):
    gw = start_gateway({SUBMIT: FakePool(echo), DOCS: FakePool(echo)}, keyed={"/api/submit"}, api_keys={API_KEY})
    first = _identity(gw, "POST", "/api/submit", {"x-api-key": API_KEY})
    second = _identity(gw, "POST", "/api/submit", {"x-api-key": API_KEY})
    assert first["apiKey"] == API_KEY
    assert first["apiKeyId"] == second["apiKeyId"] == api_key_id(API_KEY)
    assert re.fullmatch(r"[a-z0-9]{10}", first["apiKeyId"]) and API_KEY not in first["apiKeyId"]
    assert api_key_id("another-key") != first["apiKeyId"]
    assert first["sourceIp"] == "127.0.0.1"
    # A route without a key requirement: API Gateway fills neither.
    public = _identity(gw, "GET", "/api/docs", {"x-api-key": API_KEY})
    assert (public["apiKey"], public["apiKeyId"]) == (None, None)


def test_without_keys_keyed_routes_get_the_local_default_id(start_gateway):
    gw = start_gateway({SUBMIT: FakePool(echo)}, keyed={"/api/submit"})
    identity = _identity(gw, "POST", "/api/submit", {"x-api-key": "whatever"})
    assert identity["apiKeyId"] == LOCAL_DEFAULT_API_KEY_ID == "local-default-key"
    assert identity["apiKey"] is None  # nothing was checked: no value is vouched for


def test_a_body_that_is_not_utf8_reaches_the_function_as_text(start_gateway):
    pool = FakePool(echo)
    gw = start_gateway({SUBMIT: pool})
    raw = b'{"store_id": "caf\xe9", "x": "\xff\xfe"}'
    response = requests.post(
        gw.url + "/api/submit",
        data=raw,
        headers={"Content-Type": "application/json", "X-Latin": "caf\xe9"},
        timeout=10,
    )
    assert response.status_code == 200
    event = response.json()
    # No binaryMediaTypes in the template: API Gateway passes text, invalid bytes as U+FFFD.
    assert event["isBase64Encoded"] is False
    assert event["body"] == raw.decode("utf-8", errors="replace")
    assert "\ufffd" in event["body"]
    assert event["headers"]["X-Latin"] == "caf\xe9"


def test_a_binary_media_type_is_passed_base64(start_gateway, template_api):
    api = dataclasses.replace(template_api, binary_media_types=["image/*"])
    gw = start_gateway({SUBMIT: FakePool(echo)}, api=api)
    raw = b"\x89PNG\r\n\x1a\n\xff\x00"
    event = requests.post(gw.url + "/api/submit", data=raw, headers={"Content-Type": "image/png"}, timeout=10).json()
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    text = requests.post(gw.url + "/api/submit", data=b"{}", headers={"Content-Type": "application/json"}, timeout=10)
    assert text.json()["isBase64Encoded"] is False


def test_event_body_rules():
    assert event_body(b"", "application/json", []) == (None, False)
    assert event_body(b"\xff", None, []) == ("\ufffd", False)
    assert event_body(b"\xff", "Image/PNG; q=1", ["image/png"]) == ("/w==", True)
    assert event_body(b"{}", "application/json", ["*/*"]) == ("e30=", True)


def test_the_local_stack_takes_a_body_that_is_not_utf8(keyed_local_stack):
    """Submit's own answer (a 4xx, whatever it decides), never a gateway failure."""
    url = keyed_local_stack.url + "/api/submit"
    bodies = [b'\xff\xfe{"count": 1}', json.dumps({"count": 1, "visits": []}).encode().replace(b"[]", b'["\xe9"]')]
    for body in bodies:
        response = requests.post(
            url, data=body, headers={"Content-Type": "application/json", "x-api-key": API_KEY}, timeout=60
        )
        assert 400 <= response.status_code < 500, response.text
        assert set(response.json()) == {"error"}
