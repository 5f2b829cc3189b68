"""Builds the API's OpenAPI document from the handlers of every API function (`make openapi`).

Each function with Api events under /api/ in template.yaml has its own Powertools resolver (`app` in its
app.py); the document merges them, refusing two definitions of one route. It is written to
functions/status/openapi.json, where the status function (which serves /api/openapi.json and
/api/docs) is packaged from, and /openapi.json at the repository root is a link to that file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "functions" / "status" / "openapi.json"
ROOT_LINK = ROOT / "openapi.json"
TITLE = "Retail Pulse API"
DESCRIPTION = (
    "Submit jobs of store-visit images; follow each job's status, progress, errors and results. "
    'Every 4xx/5xx body is `{"error": "..."}`; bad input names the field, e.g. `visits[2].image_url[0]: ...`.'
)
# Powertools documents a 422 for its parameter validation; this API maps those failures to its own
# 400 {"error": ...} (retail_pulse.api.responses), so the 422 and the schemas only it used are removed.
POWERTOOLS_ONLY_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


API_PREFIX = "/api/"  # the API; other routes (the web pages) are not part of its contract


def api_handlers() -> list[Path]:
    """app.py of each function that template.yaml routes API requests to, in template order."""
    from devkit.template import Stack

    functions = Stack().functions(resolve_environment=False).values()
    return [spec.code_uri / "app.py" for spec in functions if any(is_api_path(r.path) for r in spec.routes)]


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def load_resolver(handler: Path):
    """The handler module's `app`, imported the way Lambda would (layer on the path)."""
    layer = str(ROOT / "layers" / "common")
    if layer not in sys.path:
        sys.path.insert(0, layer)
    spec = importlib.util.spec_from_file_location(f"openapi_{handler.parent.name}_app", handler)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from retail_pulse.api.route_docs import apply_route_docs

    apply_route_docs(module.app)  # the bodies are built here only, not at a function's INIT
    return module.app


def api_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def build_document() -> str:
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

    merge = OpenAPIMerge(title=TITLE, version=api_version(), description=DESCRIPTION, on_conflict="error")
    for handler in api_handlers():
        merge.add_schema(load_resolver(handler).get_openapi_schema())
    document = json.loads(merge.get_openapi_json_schema())
    _drop_unused_validation_error(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _drop_unused_validation_error(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in POWERTOOLS_ONLY_SCHEMAS:
        schemas.pop(name, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the document (default: check it is current)")
    args = parser.parse_args(argv)
    generated = build_document()
    if args.write:
        DOCUMENT.write_text(generated, encoding="utf-8")
        if not ROOT_LINK.is_symlink():
            ROOT_LINK.unlink(missing_ok=True)
            ROOT_LINK.symlink_to(DOCUMENT.relative_to(ROOT))
        print(f"wrote {DOCUMENT.relative_to(ROOT)} ({len(generated)} bytes); {ROOT_LINK.name} links to it")
        return 0
    if DOCUMENT.read_text(encoding="utf-8") != generated:
        print(f"{DOCUMENT.relative_to(ROOT)} is out of date: run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
