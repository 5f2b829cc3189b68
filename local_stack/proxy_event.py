"""The API Gateway REST proxy event (payload format 1.0) of one HTTP request."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl

# apiKeyId of every request to a keyed route when the local stack checks no keys (no --api-key), so
# functions can rely on the field being set; a real key's id is derived from it (api_key_id).
LOCAL_DEFAULT_API_KEY_ID = "local-default-key"


def api_key_id(key: str) -> str:
    """A stable id for an API key, distinct from its value, shaped like API Gateway's (10 characters,
    lowercase letters and digits), so logs and functions can name a client without its secret."""
    return base64.b32encode(hashlib.sha256(key.encode()).digest()).decode().lower()[:10]


@dataclass
class Identity:
    """What API Gateway knows of the caller (requestContext.identity)."""

    source_ip: str
    user_agent: str | None
    api_key: str | None = None
    api_key_id: str | None = None


def is_binary(content_type: str | None, binary_media_types: list[str]) -> bool:
    if not content_type or not binary_media_types:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return any(fnmatch.fnmatchcase(media_type, pattern.lower()) for pattern in binary_media_types)


def event_body(body: bytes, content_type: str | None, binary_media_types: list[str]) -> tuple[str | None, bool]:
    """(body, isBase64Encoded). API Gateway base64-encodes only a Content-Type of the API's
    binaryMediaTypes; any other body is passed as UTF-8 text, so bytes that are not UTF-8 arrive as
    U+FFFD replacement characters, never as an error before the function runs."""
    if not body:
        return None, False
    if is_binary(content_type, binary_media_types):
        return base64.b64encode(body).decode(), True
    return body.decode("utf-8", errors="replace"), False


def build_event(  # noqa: PLR0917 - the parts of one HTTP request
    resource: str,
    path_parameters: dict[str, str] | None,
    method: str,
    path: str,
    stage_path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    identity: Identity,
    stage: str,
    binary_media_types: list[str] | None = None,
) -> dict:
    """`path` is the resource path the function sees (no stage); `stage_path` is the path as
    requested on the stage URL (requestContext.path: "/dev/api/docs")."""
    multi_headers: dict[str, list[str]] = {}
    for key, value in headers:
        multi_headers.setdefault(key, []).append(value)
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    lower = {k.lower(): v[-1] for k, v in multi_headers.items()}
    text, is_b64 = event_body(body, lower.get("content-type"), binary_media_types or [])
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lower.get("host") or "127.0.0.1",
            "extendedRequestId": uuid.uuid4().hex,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "apiKey": identity.api_key,
                "apiKeyId": identity.api_key_id,
                "caller": None,
                "sourceIp": identity.source_ip,
                "user": None,
                "userAgent": identity.user_agent,
                "userArn": None,
            },
            "path": stage_path,
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": stage,
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }
