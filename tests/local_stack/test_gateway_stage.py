"""Stage-prefixed paths: `/<stage>/...` is served as the deployed stage URL serves it (the event's
`path` without the stage, `requestContext.path` with it), so pages that link through the stage, such
as Swagger UI at /api/docs, load whole."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from gateway_kit import FakePool, echo

DOCS_ASSETS = {".css": "text/css", ".js": "text/javascript"}


def _event(gw, path: str) -> dict:
    response = requests.get(gw.url + path, timeout=10)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def test_stage_prefixed_and_plain_paths_reach_the_same_route(start_gateway):
    pool = FakePool(echo)
    gw = start_gateway({("GET", "/api/docs"): pool, ("GET", "/"): pool, ("GET", "/assets/{file}"): pool})
    prefixed = _event(gw, "/dev/api/docs")
    assert (prefixed["path"], prefixed["resource"]) == ("/api/docs", "/api/docs")
    assert prefixed["requestContext"]["path"] == "/dev/api/docs"
    assert prefixed["requestContext"]["stage"] == "dev"
    plain = _event(gw, "/api/docs")  # served as the stage too: the same event
    assert (plain["path"], plain["requestContext"]["path"]) == ("/api/docs", "/dev/api/docs")
    asset = _event(gw, "/dev/assets/app.js")
    assert asset["pathParameters"] == {"file": "app.js"} and asset["path"] == "/assets/app.js"
    # The stage root, with and without its slash (the web function redirects "/dev" to "dev/").
    assert [(e["path"], e["requestContext"]["path"]) for e in (_event(gw, "/dev"), _event(gw, "/dev/"))] == [
        ("/", "/dev"),
        ("/", "/dev/"),
    ]
    assert requests.get(gw.url + "/dev/api/nothing", timeout=10).status_code == 403


def test_a_resource_named_like_the_stage_still_routes(start_gateway, template_api):
    api = dataclasses.replace(template_api, stage="api")
    pool = FakePool(echo)
    gw = start_gateway({("GET", "/api/health"): pool}, api=api)
    assert _event(gw, "/api/health")["requestContext"]["path"] == "/api/api/health"
    assert _event(gw, "/api/api/health")["path"] == "/api/health"


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"])
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.urls.append(found["href"])


@pytest.mark.parametrize("docs", ["/api/docs", "/dev/api/docs"])
def test_swagger_ui_loads_whole_through_the_local_stack(keyed_local_stack, docs):
    page = requests.get(keyed_local_stack.url + docs, timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    parser = _Assets()
    parser.feed(page.text)
    assert len(parser.urls) == 2, parser.urls
    for url in parser.urls:
        assert url.startswith("/dev/api/docs/")  # linked through the stage, as on AWS
        asset = requests.get(keyed_local_stack.url + url, timeout=30)
        assert asset.status_code == 200, (url, asset.text[:200])
        expected = DOCS_ASSETS[Path(url).suffix]
        assert asset.headers["Content-Type"].startswith(expected), (url, asset.headers["Content-Type"])
    document = requests.get(keyed_local_stack.url + "/dev/api/openapi.json", timeout=30).json()
    assert document["servers"] == [{"url": "/dev"}]


CHROMIUM = Path("/usr/bin/chromium")


def test_swagger_ui_renders_in_a_browser(keyed_local_stack):
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(keyed_local_stack.url + "/dev/api/docs")
            title = page.locator(".swagger-ui .info .title")
            title.wait_for(timeout=20_000)
            assert "Retail Pulse" in title.inner_text()
            assert page.locator(".opblock").count() >= 10  # the operations are listed
            assert failed == []
        finally:
            browser.close()
