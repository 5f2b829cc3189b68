"""Validation of the submit body: every rejection names the field and index."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.errors import InvalidRequest, RequestTooLarge
from retail_pulse.domain.models import FailureThreshold, JobRequest, Visit

# An error names the field and may show the value it got, but never more than this of it: a
# 400-digit `count` or a 3,000-character id must not come back (or go to the logs) whole.
ECHO_CHARS = 64


def echo(value: object) -> str:
    """`value` as an error message may show it: its first ECHO_CHARS characters, "…" when cut."""
    try:
        text = str(value)
    except ValueError:  # an int past Python's limit for str() (json.loads stops those before us)
        return "(a number too long to show)"
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


@dataclass(frozen=True)
class InputLimits:
    """Bounds on a submit body beyond the image count (defaults as in `Settings`)."""

    max_request_bytes: int = 6 * 1024 * 1024
    max_visits: int = 10_000
    max_urls_per_visit: int = 100
    max_url_length: int = 2048
    max_store_id_length: int = 64
    max_visit_time_length: int = 64

    @classmethod
    def from_settings(cls, settings) -> InputLimits:
        return cls(
            max_request_bytes=settings.max_request_bytes,
            max_visits=settings.max_visits_per_job,
            max_urls_per_visit=settings.max_urls_per_visit,
            max_url_length=settings.max_url_length,
            max_store_id_length=settings.max_store_id_length,
            max_visit_time_length=settings.max_visit_time_length,
        )


def parse_job_request(body: str | None, max_images: int, limits: InputLimits | None = None) -> JobRequest:
    limits = limits or InputLimits()
    if body is None or body == "":
        raise InvalidRequest("body: expected a JSON object")
    # Checked before parsing: a huge body is refused without building it in memory twice.
    if len(body) > limits.max_request_bytes or len(body.encode("utf-8", "surrogatepass")) > limits.max_request_bytes:
        raise RequestTooLarge(f"body: larger than {limits.max_request_bytes} bytes")
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
    if len(visits) > limits.max_visits:
        raise RequestTooLarge(f"visits: a job may hold at most {limits.max_visits} visits")
    if count != len(visits):
        raise InvalidRequest(f"count: {echo(count)} does not match the number of visits ({len(visits)})")

    parsed = []
    images = 0
    for i, raw in enumerate(visits):
        visit = _parse_visit(raw, f"visits[{i}]", limits)
        images += len(visit.image_urls)
        if images > max_images:
            raise RequestTooLarge(f"a job may hold at most {max_images} images")
        parsed.append(visit)
    callback_url = data.get("callback_url")
    if callback_url is not None and not is_http_url(callback_url):  # SSRF rules apply when it is called
        raise InvalidRequest("callback_url: must be an absolute http(s) URL")
    if callback_url is not None:
        _check_text(callback_url, "callback_url", limits.max_url_length)
        _check_no_credentials(callback_url, "callback_url")
    threshold, labels, max_concurrency = parse_job_controls(data)
    return JobRequest(
        visits=tuple(parsed),
        callback_url=callback_url,
        threshold=threshold,
        labels=labels,
        max_concurrency=max_concurrency,
    )


MAX_LABELS = 10
MAX_LABEL_KEY_LENGTH = 64
MAX_LABEL_VALUE_LENGTH = 128
LABEL_KEY = re.compile(r"[A-Za-z0-9_.\-/]+")


def parse_job_controls(data: dict) -> tuple[FailureThreshold, dict[str, str], int | None]:
    """The optional job-control fields of a submit: the failure threshold, the labels and the most
    images of the job measured at once (`max_concurrency`, under its client's quota)."""
    percentage = data.get("tolerated_failure_percentage")
    if percentage is not None and (
        isinstance(percentage, bool) or not isinstance(percentage, (int, float)) or not 0 <= percentage <= 100
    ):
        raise InvalidRequest("tolerated_failure_percentage: must be a number from 0 to 100")
    count = data.get("tolerated_failure_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise InvalidRequest("tolerated_failure_count: must be an integer >= 0")
    labels = data.get("labels")
    if labels is None:
        labels = {}
    if not isinstance(labels, dict):
        raise InvalidRequest("labels: must be an object of string keys and values")
    if len(labels) > MAX_LABELS:
        raise InvalidRequest(f"labels: at most {MAX_LABELS} labels")
    for key, value in labels.items():
        parse_label(key, value, f"labels.{echo(key)}")
    max_concurrency = data.get("max_concurrency")
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise InvalidRequest("max_concurrency: must be an integer >= 1 (images of the job measured at once)")
    return FailureThreshold(percentage, count), dict(labels), max_concurrency


def parse_label(key: object, value: object, where: str = "label") -> tuple[str, str]:
    """A label's key (1-64 of A-Z a-z 0-9 _ . - /) and value (a string of at most 128 characters)."""
    if not isinstance(key, str) or not LABEL_KEY.fullmatch(key) or len(key) > MAX_LABEL_KEY_LENGTH:
        raise InvalidRequest(f"{where}: a key is 1-{MAX_LABEL_KEY_LENGTH} characters of A-Z a-z 0-9 _ . - /")
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: the value must be a string")
    _check_text(value, where, MAX_LABEL_VALUE_LENGTH)
    return key, value


def _parse_visit(raw: object, where: str, limits: InputLimits) -> Visit:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: must be an object")
    for key in ("store_id", "image_url", "visit_time"):
        if key not in raw:
            raise InvalidRequest(f"{where}.{key}: required")
    store_id = raw["store_id"]
    if not isinstance(store_id, str) or not store_id.strip():
        raise InvalidRequest(f"{where}.store_id: must be a non-empty string")
    _check_text(store_id, f"{where}.store_id", limits.max_store_id_length)
    urls = raw["image_url"]
    if not isinstance(urls, list) or not urls:
        raise InvalidRequest(f"{where}.image_url: must be a non-empty list of URLs")
    if len(urls) > limits.max_urls_per_visit:
        raise RequestTooLarge(f"{where}.image_url: a visit may hold at most {limits.max_urls_per_visit} URLs")
    for j, url in enumerate(urls):
        if isinstance(url, str):
            _check_text(url, f"{where}.image_url[{j}]", limits.max_url_length)
        if not is_http_url(url):
            raise InvalidRequest(f"{where}.image_url[{j}]: must be an absolute http(s) URL")
        _check_no_credentials(url, f"{where}.image_url[{j}]")
    visit_time = raw["visit_time"]
    if isinstance(visit_time, str):
        _check_text(visit_time, f"{where}.visit_time", limits.max_visit_time_length)
    utc = parse_visit_time(visit_time)
    if utc is None:
        raise InvalidRequest(f"{where}.visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z")
    return Visit(store_id=store_id, image_urls=tuple(urls), visit_time=visit_time, visit_time_utc=utc)


def _check_text(value: str, where: str, max_length: int) -> None:
    if len(value) > max_length:
        raise InvalidRequest(f"{where}: at most {max_length} characters")
    # JSON can carry what storage cannot: lone surrogates (not UTF-8) and control characters.
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidRequest(f"{where}: must not contain control characters or unpaired surrogates")


def is_http_url(value: object) -> bool:
    if not isinstance(value, str) or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_no_credentials(url: str, where: str) -> None:
    # A URL's userinfo is never sent (safe_http sends no Authorization), but it would be stored and
    # shown back in results, status errors and notices: refuse it, and do not echo the URL.
    if has_credentials(url):
        raise InvalidRequest(f"{where}: must not contain credentials (user:password@)")


def has_credentials(url: str) -> bool:
    """True when the URL's authority has a userinfo part (`user:password@`, `token@`, even `@`)."""
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return "@" in url


def without_credentials(url: str) -> str:
    """The URL as it may be shown (errors, logs): its userinfo, if any, removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(malformed URL)"
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
