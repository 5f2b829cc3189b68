"""What every API function shares: JSON responses and the one mapping of errors to HTTP."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from .errors import DomainError


def json_response(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body), headers=headers
    )


def field_path(location: Sequence[str | int]) -> str:
    """("query", "limit") -> "limit"; ("body", "visits", 2, "image_url", 0) -> "visits[2].image_url[0]"."""
    path = ""
    for part in location[1:] if location and location[0] in ("query", "body", "header", "path") else location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request"


def validation_message(exc: RequestValidationError) -> str:
    """The first error, in the API's documented `<field path>: <problem>` form."""
    errors = list(exc.errors())
    if not errors:
        return "request: invalid"
    first = errors[0]
    problem = "required" if first.get("type") == "missing" else str(first.get("msg") or first.get("type")).lower()
    return f"{field_path(first.get('loc', ()))}: {problem}"


def register_error_handlers(app: APIGatewayRestResolver, logger) -> None:
    @app.exception_handler(DomainError)
    def _domain_error(exc: DomainError) -> Response:
        logger.info("request rejected", extra={"status": exc.status_code, "error": exc.message})
        return json_response(exc.status_code, exc.body())

    # Powertools answers a failed parameter validation with 422 and its own body; this API's
    # contract is 400 {"error": "<field path>: ..."} for every bad input.
    @app.exception_handler(RequestValidationError)
    def _invalid_parameters(exc: RequestValidationError) -> Response:
        message = validation_message(exc)
        logger.info("request rejected", extra={"status": 400, "error": message})
        return json_response(400, {"error": message})

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        event = app.current_event
        return json_response(404, {"error": f"no route for {event.http_method} {event.path}"})
