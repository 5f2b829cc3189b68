"""functions/web: the dashboard's page and assets, as API Gateway REST proxy responses."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from harness import ROOT, LambdaContext, api_event, load_function


@pytest.fixture(scope="module")
def web():
    return load_function("web")


def call(web, path: str, *, query=None, headers=None, request_path: str | None = None) -> dict:
    event = api_event("GET", path, query=query, headers=headers)
    if request_path is not None:
        event["requestContext"]["path"] = request_path
    response = web.lambda_handler(event, LambdaContext())
    # Powertools answers a REST event that has multiValueHeaders with multiValueHeaders.
    headers = dict(response.get("headers") or {})
    headers.update({k: ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()})
    return {**response, "headers": headers}


STATIC = ROOT / "functions" / "web" / "static"
MODULES = sorted(path.name for path in STATIC.glob("*.js"))
# A module's static imports (`import ... from "x"`, `import "x"`), however the line is wrapped.
IMPORT = re.compile(r'^\s*import\b[^"\';]*?["\']([^"\']+)["\'];?', re.MULTILINE)


def test_page_is_html_revalidated_and_links_its_assets_by_content_version(web):
    response = call(web, "/")
    headers = response["headers"]
    assert response["statusCode"] == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-cache"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    links = re.findall(r'(?:src|href)="(assets/[^"?]+)\?v=([0-9a-f]+)"', response["body"])
    # The stylesheet, the entry module and a preload of every module it imports.
    assert sorted(name for name, _ in links) == sorted(f"assets/{name}" for name in [*MODULES, "style.css"])
    assert {version for _, version in links} == {web.asset_version()}
    # Relative links only: the page must work under a stage path such as /dev/.
    assert not re.search(r'(?:src|href)="/', response["body"])


def test_page_runs_one_module_script_and_nothing_inline(web):
    body = call(web, "/")["body"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", body, re.DOTALL)
    assert scripts == [(f' type="module" src="assets/main.js?v={web.asset_version()}"', "")]
    preloads = re.findall(r'<link rel="modulepreload" href="assets/([^"?]+)\?', body)
    assert sorted(preloads) == sorted(set(MODULES) - {"main.js"})
    assert not re.search(r"\son[a-z]+=", body)  # no inline event handlers either (the CSP forbids them)


def test_every_file_in_static_is_served_and_nothing_else(web):
    assert set(web.ASSET_TYPES) == {path.name for path in STATIC.iterdir()} - {"index.html"}


@pytest.mark.parametrize(
    ("name", "content_type"), [*((name, "text/javascript") for name in MODULES), ("style.css", "text/css")]
)
def test_assets_have_their_content_type_and_are_cached_only_when_versioned(web, name, content_type):
    versioned = call(web, f"/assets/{name}", query={"v": web.asset_version()})
    assert versioned["statusCode"] == 200
    assert versioned["headers"]["Content-Type"].startswith(content_type)
    assert versioned["headers"]["Cache-Control"] == "public, max-age=31536000, immutable"
    source = (STATIC / name).read_text()
    assert versioned["body"] == source.replace("__ASSET_VERSION__", web.asset_version())
    for stale in ({"v": "0123456789abcdef"}, None):
        assert call(web, f"/assets/{name}", query=stale)["headers"]["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("name", MODULES)
def test_modules_import_served_modules_by_the_current_version(web, name):
    body = call(web, f"/assets/{name}")["body"]
    assert "__ASSET_VERSION__" not in body
    for specifier in IMPORT.findall(body):
        # The same URL wherever a module is imported (one instance), cached as long as the page's links.
        match = re.fullmatch(r"\./([^/?]+)\?v=([0-9a-f]+)", specifier)
        assert match, f"{name} imports {specifier!r}: expected ./<module>.js?v=<version>"
        assert match[1] in MODULES and match[2] == web.asset_version()
    assert "eval(" not in body and "new Function" not in body  # the CSP would refuse them


def test_every_module_is_imported_from_main():
    graph = {name: {m[2:].split("?")[0] for m in IMPORT.findall((STATIC / name).read_text())} for name in MODULES}
    reached, todo = set(), ["main.js"]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(graph[name])
    assert reached == set(MODULES)


def test_matching_etag_answers_304_without_a_body(web):
    etag = call(web, "/assets/main.js")["headers"]["ETag"]
    response = call(web, "/assets/main.js", headers={"If-None-Match": f'"other", {etag}'})
    assert (response["statusCode"], response["body"]) == (304, "")
    assert call(web, "/assets/main.js", headers={"If-None-Match": '"other"'})["statusCode"] == 200


@pytest.mark.parametrize("name", ["index.html", "..%2Fapp.py", "app.py", "nope.js", "app.js"])
def test_only_the_listed_assets_are_served(web, name):
    response = call(web, f"/assets/{name}")
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"].startswith("no asset")


def test_stage_url_without_trailing_slash_redirects_to_it_with_one(web):
    response = call(web, "/", request_path="/dev")
    assert response["statusCode"] == 301
    assert response["headers"]["Location"] == "dev/"  # relative: /dev -> /dev/ on any host


def test_the_handler_never_imports_boto3():
    code = (
        "import sys, importlib.util;"
        f"sys.path[:0] = [{str(ROOT / 'layers' / 'common')!r}];"
        f"spec = importlib.util.spec_from_file_location('web_app', {str(ROOT / 'functions' / 'web' / 'app.py')!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        "assert 'boto3' not in sys.modules, 'boto3 imported'"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
