"""CORS preflights are answered by the gateway from the template's `Cors` (SAM's OPTIONS method with a
mock integration): 200 with the Access-Control-Allow-* headers on every resource, no function run,
no key needed; a page of another origin can then call the API."""

from __future__ import annotations

import dataclasses
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from gateway_kit import API_KEY, FakePool

from devkit.template import Stack

PREFLIGHT = {
    "Origin": "https://other.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type,x-api-key",
}


def _template_routes() -> dict[tuple[str, str], FakePool]:
    functions = Stack().functions(resolve_environment=False).values()
    return {(r.method, r.path): FakePool() for f in functions for r in f.routes}


def _keyed() -> set[str]:
    functions = Stack().functions(resolve_environment=False).values()
    return {r.path for f in functions for r in f.routes if r.api_key_required}


def test_every_resource_answers_the_preflight_from_the_template_without_a_key(start_gateway):
    routes = _template_routes()
    gw = start_gateway(routes, keyed=_keyed(), api_keys=frozenset({API_KEY}))
    for _, resource in routes:
        path = resource.replace("{file}", "app.js")
        for url in (gw.url + path, f"{gw.url}/dev{path}"):
            response = requests.options(url, headers=PREFLIGHT, timeout=10)
            assert response.status_code == 200, (url, response.text)
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert response.headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
            assert response.headers["Access-Control-Allow-Headers"] == "Content-Type,x-api-key,Idempotency-Key"
            assert response.headers["Access-Control-Max-Age"] == "600"
    assert all(pool.events == [] for pool in routes.values())


def test_the_preflight_follows_the_cors_parameter_and_unknown_paths_stay_403(start_gateway):
    api = Stack(parameters={"CorsAllowOrigin": "https://app.example"}).rest_api()
    gw = start_gateway({("POST", "/api/submit"): FakePool()}, api=api)
    response = requests.options(gw.url + "/api/submit/", headers=PREFLIGHT, timeout=10)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    unknown = requests.options(gw.url + "/api/nothing", headers=PREFLIGHT, timeout=10)
    assert unknown.status_code == 403
    assert unknown.json() == {"error": "Missing Authentication Token"}
    assert unknown.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_without_allow_methods_the_resource_methods_are_listed(start_gateway, template_api):
    cors = dataclasses.replace(template_api.cors, allow_methods=None, max_age=None)
    api = dataclasses.replace(template_api, cors=cors)
    gw = start_gateway({("GET", "/api/jobs"): FakePool(), ("POST", "/api/jobs"): FakePool()}, api=api)
    response = requests.options(gw.url + "/api/jobs", timeout=10)
    assert response.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS,POST"
    assert "Access-Control-Max-Age" not in response.headers


def test_a_preflight_needs_the_key_where_the_template_says_so(start_gateway, template_api):
    api = dataclasses.replace(template_api, preflight_needs_key=True)
    gw = start_gateway({("POST", "/api/submit"): FakePool()}, api=api, api_keys=frozenset({API_KEY}))
    assert requests.options(gw.url + "/api/submit", timeout=10).status_code == 403
    keyed = requests.options(gw.url + "/api/submit", headers={"x-api-key": API_KEY}, timeout=10)
    assert keyed.status_code == 200


def test_without_cors_options_is_an_unknown_method(start_gateway, template_api):
    gw = start_gateway({("POST", "/api/submit"): FakePool()}, api=dataclasses.replace(template_api, cors=None))
    assert requests.options(gw.url + "/api/submit", timeout=10).status_code == 403


# -- through the local stack ----------------------------------------------------------------------


def test_the_local_stack_answers_a_keyless_preflight_and_the_keyed_call(keyed_local_stack):
    url = keyed_local_stack.url
    preflight = requests.options(url + "/api/submit", headers=PREFLIGHT, timeout=30)
    assert preflight.status_code == 200
    allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-api-key"} <= allowed
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"].split(",")
    call = requests.get(
        url + "/api/health", headers={"Origin": "https://other.example", "x-api-key": API_KEY}, timeout=30
    )
    assert call.status_code == 200
    assert call.headers["Access-Control-Allow-Origin"] in ("*", "https://other.example")


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


def test_a_page_of_another_origin_calls_the_api(browser, keyed_local_stack):
    """A real browser: its preflight (JSON body and x-api-key make the request non-simple) and the
    call itself, from a page served on another port (another origin)."""

    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = b"<!doctype html><title>other origin</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    other = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        result = page.evaluate(
            """async ([api, key]) => {
                const response = await fetch(api + "/api/submit", {
                    method: "POST",
                    headers: {"Content-Type": "application/json", "x-api-key": key},
                    body: JSON.stringify({count: 1, visits: [{store_id: "NOPE1",
                        image_url: ["https://images.example.com/a.jpg"], visit_time: "2024-03-15T10:00:00Z"}]}),
                });
                return {status: response.status, body: await response.json()};
            }""",
            [keyed_local_stack.url, API_KEY],
        )
        page.close()
    finally:
        other.shutdown()
        other.server_close()
    assert result["status"] == 201, result
    assert "job_id" in result["body"]
