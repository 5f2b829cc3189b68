"""Validation of the submit body: every rejection names the field and index."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

from .errors import InvalidRequest, RequestTooLarge
from .models import JobRequest, Visit


def parse_job_request(body: str | None, max_images: int) -> JobRequest:
    if body is None or body == "":
        raise InvalidRequest("body: expected a JSON object")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("body: not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body: expected a JSON object")

    count = data.get("count")
    if "count" not in data:
        raise InvalidRequest("count: required")
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidRequest("count: must be an integer")
    if "visits" not in data:
        raise InvalidRequest("visits: required")
    visits = data["visits"]
    if not isinstance(visits, list):
        raise InvalidRequest("visits: must be a list")
    if not visits:
        raise InvalidRequest("visits: must not be empty")
    if count != len(visits):
        raise InvalidRequest(f"count: {count} does not match the number of visits ({len(visits)})")

    parsed = []
    images = 0
    for i, raw in enumerate(visits):
        visit = _parse_visit(raw, f"visits[{i}]")
        images += len(visit.image_urls)
        if images > max_images:
            raise RequestTooLarge(f"a job may hold at most {max_images} images")
        parsed.append(visit)
    return JobRequest(visits=tuple(parsed))


def _parse_visit(raw: object, where: str) -> Visit:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: must be an object")
    for key in ("store_id", "image_url", "visit_time"):
        if key not in raw:
            raise InvalidRequest(f"{where}.{key}: required")
    store_id = raw["store_id"]
    if not isinstance(store_id, str) or not store_id.strip():
        raise InvalidRequest(f"{where}.store_id: must be a non-empty string")
    urls = raw["image_url"]
    if not isinstance(urls, list) or not urls:
        raise InvalidRequest(f"{where}.image_url: must be a non-empty list of URLs")
    for j, url in enumerate(urls):
        if not is_http_url(url):
            raise InvalidRequest(f"{where}.image_url[{j}]: must be an absolute http(s) URL")
    visit_time = raw["visit_time"]
    utc = parse_visit_time(visit_time)
    if utc is None:
        raise InvalidRequest(f"{where}.visit_time: must be an ISO 8601 date-time, e.g. 2024-03-15T10:00:00Z")
    return Visit(store_id=store_id, image_urls=tuple(urls), visit_time=visit_time, visit_time_utc=utc)


def is_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def parse_visit_time(value: object) -> str | None:
    """RFC 3339 date-time (`Z` or an offset; none means UTC) -> canonical UTC string, or None."""
    if not isinstance(value, str) or "T" not in value.upper() or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_utc(moment.astimezone(UTC))


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return format_utc(datetime.now(UTC))
