"""A route's OpenAPI bodies, declared beside it and built only with the document.

The request and response bodies are pydantic models (api/schema.py). Building them costs 100-150 ms
of every API function's INIT (its cold start), and no request needs them: the document is generated
by `make openapi` and served as a file. So a route declares them as a function of the schema module,
called only while the document is built:

    @documented(lambda schema: {"responses": {200: schema.json_content(schema.JobStatus, "The job.")}})
    @app.get("/api/status", summary="...", tags=["jobs"])
    def status(jobid: JobId): ...

The keys are the route decorator's own `responses` and `openapi_extensions`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

Handler = TypeVar("Handler", bound=Callable[..., Any])
RouteDocs = Callable[[ModuleType], dict[str, Any]]

DOCS_ATTRIBUTE = "__openapi_docs__"
ROUTE_DOC_KEYS = ("responses", "openapi_extensions")


def documented(docs: RouteDocs) -> Callable[[Handler], Handler]:
    """Above a route's decorator (the route is registered first): `docs(schema)` gives its bodies."""

    def mark(handler: Handler) -> Handler:
        setattr(handler, DOCS_ATTRIBUTE, docs)
        return handler

    return mark


def apply_route_docs(app: Any) -> None:
    """Sets each documented route's bodies on the resolver `app`, before its document is built."""
    from retail_pulse.api import schema

    for route in app._static_routes + app._dynamic_routes:
        docs = getattr(route.func, DOCS_ATTRIBUTE, None)
        if docs is None:
            continue
        values = docs(schema)
        unknown = set(values) - set(ROUTE_DOC_KEYS)
        if unknown:
            raise ValueError(f"{route.method} {route.path}: not route docs: {sorted(unknown)}")
        for key, value in values.items():
            setattr(route, key, value)
        route.responses = with_storage_busy(route.responses or {}, schema)
        route._dependant = None  # computed from the responses: again, with them


STORAGE_BUSY = (
    "The service is busy: DynamoDB kept refusing the request (throttling) until its budget ran out."
    " Nothing is wrong with the request: send it again after `Retry-After` seconds."
)


def with_storage_busy(responses: dict, schema: ModuleType) -> dict:
    """Every route may answer 503 when our storage refuses it (api/responses.py): documented on each,
    beside a route's own 503 where it has one."""
    own = responses.get(503)
    if own is None:
        return {**responses, 503: schema.json_content(schema.ErrorBody, STORAGE_BUSY)}
    model = own["content"]["application/json"]["model"] | schema.ErrorBody
    return {**responses, 503: schema.json_content(model, f"{own['description']} Or: {STORAGE_BUSY}")}
