"""The API's own documentation pages: Swagger UI served from the Lambda, no CDN at run time.

The page and its assets come from Powertools' bundled copy of Swagger UI, so the version is the one
pinned in the layer's requirements.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

SWAGGER_ASSETS = {
    "swagger-ui-bundle.min.js": "text/javascript",
    "swagger-ui.min.css": "text/css",
}


@lru_cache(maxsize=len(SWAGGER_ASSETS))
def swagger_asset(name: str) -> str:
    """One of SWAGGER_ASSETS as text (1.5 MB for the bundle: read once per container)."""
    if name not in SWAGGER_ASSETS:
        raise KeyError(name)
    package = resources.files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    return package.joinpath(name).read_text(encoding="utf-8")


def swagger_page(document_json: str, assets_base_url: str) -> str:
    """The Swagger UI page with the document inlined; its script and stylesheet load from `assets_base_url`."""
    # Imported here: it loads Powertools' OpenAPI models (pydantic, ~0.2 s), which only this page needs.
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    # "</" inside the inlined JSON would end the <script> element early.
    escaped = document_json.replace("</", "<\\/")
    return generate_swagger_html(
        escaped,
        f"{assets_base_url}/swagger-ui-bundle.min.js",
        f"{assets_base_url}/swagger-ui.min.css",
        assets_base_url,
        None,
    )


def stage_prefix(stage: str | None, request_path: str) -> str:
    """The stage path ("/dev") when the request came through the stage URL; "" via a custom domain or locally."""
    if stage and stage != "$default" and request_path.startswith(f"/{stage}/"):
        return f"/{stage}"
    return ""


def document_for(document_json: str, base_path: str) -> str:
    """The document with its server set to where this request came in, so "Try it out" calls this API."""
    document = json.loads(document_json)
    document["servers"] = [{"url": base_path or "/"}]
    return json.dumps(document, indent=2)
