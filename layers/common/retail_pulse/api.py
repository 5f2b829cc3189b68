"""What every API function shares: JSON responses and the one mapping of domain errors to HTTP."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from .errors import DomainError


def json_response(status: int, body: dict) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def register_error_handlers(app: APIGatewayRestResolver, logger) -> None:
    @app.exception_handler(DomainError)
    def _domain_error(exc: DomainError) -> Response:
        logger.info("request rejected", extra={"status": exc.status_code, "error": exc.message})
        return json_response(exc.status_code, exc.body())

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        event = app.current_event
        return json_response(404, {"error": f"no route for {event.http_method} {event.path}"})
