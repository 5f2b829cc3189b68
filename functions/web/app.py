"""GET / and GET /assets/{file}: the dashboard, a static page app served from this function's code.

It reads its own files and nothing else (no boto3, no AWS permissions). Every URL in the page is
relative, so the page works under a stage path (`/dev/`), a custom domain and the local stack alike.
"""

# No `from __future__ import annotations`: the dataclass below is built while the module loads under
# a name of its own (devkit.lambda_runtime.load_function), where string annotations cannot resolve.
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths

from retail_pulse.api.responses import ApiResolver, json_response, register_error_handlers

STATIC = Path(__file__).with_name("static")
PAGE = "index.html"
# The dashboard's script: ES modules, main.js the entry (index.html loads it and preloads the rest).
# Flat names: the route's `{file}` is one path segment.
SCRIPT_MODULES = (
    "main.js",
    "router.js",
    "api.js",
    "storage.js",
    "dom.js",
    "format.js",
    "validation.js",
    "csv.js",
    "charts.js",
    "views-submit.js",
    "views-files.js",
    "views-jobs.js",
    "views-job.js",
    "views-control.js",
    "views-results.js",
    "views-areas.js",
    "views-settings.js",
)
# The files /assets/{file} serves; anything else is a 404 (no path ever reaches the file system).
# Module scripts must come as JavaScript: with `nosniff` a browser refuses one of any other type.
ASSET_TYPES = {
    **dict.fromkeys(SCRIPT_MODULES, "text/javascript; charset=utf-8"),
    "style.css": "text/css; charset=utf-8",
}
# The page names its assets with `?v=<version>`, a hash of their content, and so do the modules'
# imports of each other: a versioned asset never changes, so browsers may keep it; the page itself
# is revalidated so a deploy shows at once.
VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
ASSET_VERSION_PLACEHOLDER = "__ASSET_VERSION__"
# Scripts (module scripts and their imports included) and styles only from here, never inline or
# eval'd; thumbnails from any image host; API calls to any base URL the user configures (the API's
# own CORS policy decides what a foreign origin may read).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src http: https: data:; "
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Thumbnails load from the image hosts: do not tell them which dashboard is looking.
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class StaticFile:
    body: str
    content_type: str
    etag: str


def _etag(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


@cache
def _sources() -> dict[str, str]:
    return {name: (STATIC / name).read_text(encoding="utf-8") for name in ASSET_TYPES}


@cache
def asset_version() -> str:
    digest = hashlib.sha256()
    for name in sorted(ASSET_TYPES):
        digest.update(_sources()[name].encode())
    return digest.hexdigest()[:16]


@cache
def assets() -> dict[str, StaticFile]:
    out = {}
    for name, content_type in ASSET_TYPES.items():
        body = _sources()[name].replace(ASSET_VERSION_PLACEHOLDER, asset_version())
        out[name] = StaticFile(body, content_type, _etag(body))
    return out


@cache
def page() -> StaticFile:
    body = (STATIC / PAGE).read_text(encoding="utf-8").replace(ASSET_VERSION_PLACEHOLDER, asset_version())
    return StaticFile(body, "text/html; charset=utf-8", _etag(body))


logger = Logger()
# No parameter validation: its machinery (pydantic, Powertools' OpenAPI models) would be most of this
# function's cold start, for one optional query parameter read by hand below.
app = ApiResolver()
register_error_handlers(app, logger)


# Not part of the API's OpenAPI document (tools/openapi.py documents /api/ routes only).
@app.get("/", summary="The dashboard page")
def dashboard_page():
    # `/dev` (a stage URL without a trailing slash) also reaches "/", but there the page's relative
    # URLs would resolve against the host's root: send the browser to `/dev/` first.
    request_path = app.current_event.request_context.path or "/"
    if not request_path.endswith("/"):
        last_segment = request_path.rsplit("/", 1)[-1]
        return Response(301, None, "", headers={"Location": f"{last_segment}/", "Cache-Control": REVALIDATE})
    return _file(page(), REVALIDATE, {"Content-Security-Policy": CONTENT_SECURITY_POLICY})


@app.get("/assets/<file>", summary="The dashboard's script modules and stylesheet")
def dashboard_asset(file: str):
    """`file`: a script module such as `main.js`, or `style.css`; `?v=` the content version the page
    links with (a matching version is cached for a year)."""
    v = app.current_event.get_query_string_value("v")
    found = assets().get(file)
    if found is None:
        return json_response(404, {"error": f"no asset {file[:64]}"})
    return _file(found, VERSIONED_CACHE_CONTROL if v == asset_version() else REVALIDATE)


def _file(found: StaticFile, cache_control: str, extra: dict[str, str] | None = None) -> Response:
    headers = {**COMMON_HEADERS, "Cache-Control": cache_control, "ETag": found.etag, **(extra or {})}
    if_none_match = app.current_event.headers.get("If-None-Match") or ""  # case-insensitive
    if found.etag in (tag.strip() for tag in if_none_match.split(",")):
        return Response(304, None, "", headers=headers)
    return Response(200, found.content_type, found.body, headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
