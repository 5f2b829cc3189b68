"""API Gateway's own answers (the errors it sends without reaching a function), shaped by the
template's `GatewayResponses` the way API Gateway applies them: the response type's own entry,
else DEFAULT_4XX / DEFAULT_5XX, else API Gateway's built-in `{"message": ...}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from devkit.template import GatewayResponseSpec

# Response types the local gateway produces -> API Gateway's default status code and message.
MISSING_AUTHENTICATION_TOKEN = "MISSING_AUTHENTICATION_TOKEN"  # noqa: S105 - unknown resource or method
INVALID_API_KEY = "INVALID_API_KEY"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
INTEGRATION_TIMEOUT = "INTEGRATION_TIMEOUT"
# Not API Gateway type names: a function error or malformed proxy response (502) and a request the
# gateway cannot read (400) have no type of their own; they fall back to the DEFAULT_ entries.
DEFAULT_4XX = "DEFAULT_4XX"
DEFAULT_5XX = "DEFAULT_5XX"

DEFAULT_STATUS = {
    MISSING_AUTHENTICATION_TOKEN: 403,
    INVALID_API_KEY: 403,
    REQUEST_TOO_LARGE: 413,
    INTEGRATION_TIMEOUT: 504,
}


@dataclass
class GatewayError:
    status: int
    headers: dict[str, str]
    body: bytes


class GatewayResponses:
    def __init__(self, responses: dict[str, GatewayResponseSpec] | None = None) -> None:
        self.responses = responses or {}

    def render(self, kind: str, message: str, status: int | None = None) -> GatewayError:
        """The answer of response type `kind` (its default status unless `status` is given)."""
        status = status or DEFAULT_STATUS.get(kind) or (400 if kind == DEFAULT_4XX else 502)
        fallback = DEFAULT_4XX if status < 500 else DEFAULT_5XX
        spec = self.responses.get(kind) or self.responses.get(fallback)
        headers = {"Content-Type": "application/json"}
        if spec is None:
            return GatewayError(status, headers, json.dumps({"message": message}).encode())
        # A DEFAULT_ entry's StatusCode overrides every response of its class, as on AWS.
        status = spec.status_code or status
        headers.update(spec.headers)
        template = spec.templates.get("application/json")
        if template is None:
            body = json.dumps({"message": message})
        else:
            # The variables the templates of this project use; others stay as written (visible).
            body = (
                template.replace("$context.error.messageString", json.dumps(message))
                .replace("$context.error.message", message)
                .replace("$context.error.responseType", kind)
            )
        return GatewayError(status, headers, body.encode())
