"""Page limits and opaque `next_token`s, one way for every paged listing.

A token carries the listing's `scope` (the job, the status filter, the query) and its cursor: a
token handed out for one listing is refused by another, as is anything malformed."""

from __future__ import annotations

import base64
import binascii
import json

from retail_pulse.domain.errors import InvalidRequest


def parse_limit(raw: int | str | None, *, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    text = str(raw)  # the API hands over an int it already checked; other callers pass the raw string
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= maximum:
        raise InvalidRequest(f"limit: must be an integer from 1 to {maximum}")
    return int(text)


def encode_token(scope: object, cursor: object) -> str:
    raw = json.dumps({"s": scope, "c": cursor}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token[Cursor](token: str, scope: object, cursor_type: type[Cursor], listing: str) -> Cursor:
    """The cursor of a token `encode_token` made for `scope`; InvalidRequest naming `listing` otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor = data["c"]
        valid = data["s"] == scope and isinstance(cursor, cursor_type) and not isinstance(cursor, bool)
    except (ValueError, TypeError, KeyError, binascii.Error, AttributeError):
        valid = False
    if not valid:
        raise InvalidRequest(f"next_token: malformed or not from this {listing}")
    return cursor
