"""What every API function shares: JSON responses and the one mapping of errors to HTTP."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from functools import cached_property

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from retail_pulse.domain.errors import DomainError, InvalidRequest
from retail_pulse.ports import StorageRefused

# Request headers a browser may send to the API (Powertools adds Content-Type, X-Api-Key and AWS's own).
CORS_ALLOW_HEADERS = ["Content-Type", "x-api-key", "Idempotency-Key"]
CORS_MAX_AGE_S = 600


class ConfiguredCors(CORSConfig):
    """Powertools CORS whose allowed origin is the `CORS_ALLOW_ORIGIN` setting ("*" or one origin).

    Resolvers are built at import, and settings are read on first use, not at import: so the origin
    is looked up per request here instead of being fixed in the constructor.
    """

    def __init__(self) -> None:
        super().__init__(allow_headers=CORS_ALLOW_HEADERS, max_age=CORS_MAX_AGE_S)

    def allowed_origin(self, extracted_origin: str | None) -> str | None:
        if not extracted_origin:
            return None
        # Imported on first use: the dashboard's function never loads the settings module.
        from retail_pulse.settings import get_settings

        configured = get_settings().cors_allow_origin
        if configured == "*":
            return "*"
        return extracted_origin if extracted_origin == configured else None

    def headers_for(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of a response to a request from `origin` (none when it is not allowed)."""
        allowed = self.allowed_origin(origin)
        return self.to_dict(allowed) if allowed else {}


# A body is JSON (RFC 8259: UTF-8), so bytes that are not UTF-8 are a JSON error of the client's.
NOT_JSON = "body: not valid JSON"
# API Gateway passes a body that is not UTF-8 (and not of a binary media type) as text with each bad
# byte replaced by U+FFFD: the same broken bytes must not be refused base64-encoded and then stored
# as mangled store ids or URLs when they come as text. A client that means the character can send
# the JSON escape \ufffd, which is ASCII on the wire.
REPLACEMENT_CHARACTER = "\ufffd"


class ApiEvent(APIGatewayProxyEvent):
    """The REST proxy event whose body is checked as it is decoded: not base64 (when
    `isBase64Encoded`), not UTF-8, or carrying U+FFFD is `InvalidRequest("body: not valid JSON")`,
    a 400 through the error handlers, instead of a UnicodeDecodeError (a 502 at API Gateway).
    Checked only by routes that read the body; the others answer as usual."""

    @cached_property
    def decoded_body(self) -> str | None:
        body = self.body
        if not body:
            return body
        if self.is_base64_encoded:
            try:
                body = base64.b64decode(body.encode("ascii"), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeError):
                raise InvalidRequest(NOT_JSON) from None
        if REPLACEMENT_CHARACTER in body:
            raise InvalidRequest(NOT_JSON)
        return body


class ApiResolver(APIGatewayRestResolver):
    """The resolver every API function uses: Powertools' REST resolver with `ApiEvent` events."""

    def _to_proxy_event(self, event: dict) -> BaseProxyEvent:
        return ApiEvent(event, self._json_body_deserializer)


def api_cors() -> ConfiguredCors:
    """The CORS configuration every API resolver uses: `ApiResolver(cors=api_cors(), ...)`."""
    return ConfiguredCors()


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


STORAGE_RETRY_AFTER_S = 2


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

    # DynamoDB kept refusing (throttles, conflicts) until the request's budget ran out: an
    # infrastructure fault, not the client's, and one that passes. Without this it is a 502.
    @app.exception_handler(StorageRefused)
    def _storage_refused(exc: StorageRefused) -> Response:
        logger.warning("storage refused the request", extra={"status": 503, "error": str(exc)})
        body = {"error": "the service is busy: our storage refused the request; try again shortly"}
        return json_response(503, body, headers={"Retry-After": str(STORAGE_RETRY_AFTER_S)})

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        event = app.current_event
        # Powertools adds CORS headers to routed responses only; this one has no route.
        cors = api_cors().headers_for(event.headers.get("Origin") if event.headers else None)
        return json_response(404, {"error": f"no route for {event.http_method} {event.path}"}, headers=cors)
