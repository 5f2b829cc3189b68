"""Access through the local stack: API keys (a second stack started with one) and API Gateway's own
errors in the API's JSON shape with CORS headers."""

from __future__ import annotations

import requests
from reliability import record

from .conftest import API_KEY

KEY = API_KEY
VISIT = {"store_id": "NOPE1", "image_url": ["https://images.example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}


def test_keyed_routes_refuse_requests_without_the_key(keyed_stack):
    url = keyed_stack.url
    attempts = [
        ("GET", "/api/health", {}),
        ("GET", "/api/status?jobid=x", {"x-api-key": "wrong"}),
        ("POST", "/api/submit", {"x-api-key": ""}),
        ("GET", "/api/stores?q=pan", {"X-API-KEY": KEY.upper()}),
    ]
    for method, path, headers in attempts:
        response = requests.request(
            method, url + path, headers=headers, json={"count": 1, "visits": [VISIT]}, timeout=30
        )
        assert response.status_code == 403, (path, response.text)
        assert response.json() == {"error": "Forbidden"}
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    record("access: API request without a valid x-api-key (local stack)", len(attempts))


def test_the_key_opens_the_api_and_public_pages_need_none(keyed_stack):
    url, auth = keyed_stack.url, {"x-api-key": KEY}
    assert requests.get(f"{url}/api/health", headers=auth, timeout=30).json() == {"status": "ok"}
    submitted = requests.post(f"{url}/api/submit", json={"count": 1, "visits": [VISIT]}, headers=auth, timeout=60)
    assert submitted.status_code == 201, submitted.text
    status = requests.get(f"{url}/api/status", params={"jobid": submitted.json()["job_id"]}, headers=auth, timeout=30)
    assert status.status_code == 200 and status.json()["status"] == "failed"  # unknown store: failed at once
    for path in ("/", "/api/openapi.json", "/api/docs"):
        assert requests.get(url + path, timeout=30).status_code == 200, path


def test_gateway_errors_are_json_with_cors(local_stack):
    unknown = requests.get(f"{local_stack.url}/api/nothing/here", timeout=30)
    assert unknown.status_code == 403
    assert unknown.json() == {"error": "Missing Authentication Token"}
    too_large = requests.post(f"{local_stack.url}/api/submit", data=b"x" * (11 * 1024 * 1024), timeout=60)
    assert too_large.status_code == 413 and set(too_large.json()) == {"error"}
    for response in (unknown, too_large):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    # Without keys configured, the default local stack does not check them.
    assert requests.get(f"{local_stack.url}/api/health", timeout=30).status_code == 200
