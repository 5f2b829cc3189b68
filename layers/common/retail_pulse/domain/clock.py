"""Time: our UTC timestamps and RFC 3339 parsing (one format for every stored time)."""

from __future__ import annotations

from datetime import UTC, datetime


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
    try:
        return format_utc(moment.astimezone(UTC))
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before year 1 in UTC
        return None


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return format_utc(datetime.now(UTC))
