"""S3's checks of a presigned URL (SigV4 in the query string), which moto does not make: the URL must
not have expired, and its signature must match the request as made: method, path, query and the
signed headers (a signed `Content-Length` is how an upload URL is bound to one size), as S3 does.

Presigned URLs of the local stack are signed with its credentials (`local` / `local`, what
devkit/function_env.py gives every function); another access key is refused, as S3 refuses a key it
does not know. Requests signed in their `Authorization` header are left to moto as before.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from calendar import timegm
from urllib.parse import parse_qsl, quote

LOCAL_ACCESS_KEY = "local"
LOCAL_SECRET_KEY = "local"  # noqa: S105 - the local stack's made-up credentials, not a secret
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES_S = 7 * 86_400


def _error(status: str, code: str, message: str) -> tuple[str, bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return status, body.encode()


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def is_presigned(environ: dict) -> bool:
    return "X-Amz-Signature=" in environ.get("QUERY_STRING", "")


def check(environ: dict, now: float | None = None) -> tuple[str, bytes] | None:
    """None when the presigned request may go on; else the (status, S3 error body) S3 would answer."""
    params = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    values = dict(params)
    try:
        credential = values["X-Amz-Credential"]
        amz_date = values["X-Amz-Date"]
        expires = int(values["X-Amz-Expires"])
        signed_headers = values["X-Amz-SignedHeaders"]
        signature = values["X-Amz-Signature"]
        access_key, date, region, service, terminal = credential.split("/")
        signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except (KeyError, ValueError):
        return _error("400 Bad Request", "AuthorizationQueryParametersError", "malformed presigned URL")
    if values.get("X-Amz-Algorithm") != ALGORITHM or terminal != "aws4_request" or not 1 <= expires <= MAX_EXPIRES_S:
        return _error("400 Bad Request", "AuthorizationQueryParametersError", "malformed presigned URL")
    if (time.time() if now is None else now) > signed_at + expires:
        return _error("403 Forbidden", "AccessDenied", "Request has expired")
    if access_key != LOCAL_ACCESS_KEY:
        return _error("403 Forbidden", "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist")
    raw_path = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/").split("?")[0]
    query = "&".join(
        f"{_encode(k)}={_encode(v)}" for k, v in sorted((k, v) for k, v in params if k != "X-Amz-Signature")
    )
    headers = []
    for name in signed_headers.split(";"):
        if name == "host":
            value = environ.get("HTTP_HOST", "")
        elif name == "content-length":
            value = environ.get("CONTENT_LENGTH") or "0"
        elif name == "content-type":
            value = environ.get("CONTENT_TYPE", "")
        else:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"), "")
        headers.append(f"{name}:{' '.join(value.split())}\n")
    canonical = "\n".join(
        [environ["REQUEST_METHOD"], raw_path, query, "".join(headers), signed_headers, "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(_signing_key(LOCAL_SECRET_KEY, date, region, service), to_sign.encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), signature):
        return _error(
            "403 Forbidden",
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        )
    return None
