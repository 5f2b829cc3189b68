"""Time: our UTC timestamps and RFC 3339 parsing (one format for every stored time)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone

MAX_DATE_TIME_LENGTH = 64
# RFC 3339 section 5.6: full-date ("T" / "t" / the space its NOTE allows) full-time; seconds are
# required, a fraction takes ".", the offset is "Z" / "z" / +hh:mm / -hh:mm. The offset is optional
# here only: the API has always read a time without one as UTC. `datetime.fromisoformat` is not
# used: it takes ISO 8601's other forms too (week and ordinal dates, basic format, "," fractions,
# no seconds), which RFC 3339 excludes.
RFC3339_DATE_TIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?"
    r"(?:(?P<zulu>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))?"
)
LEAP_SECOND = 60
# A leap second (23:59:60) becomes the last millisecond of the second before it: the canonical
# time has no second 60, and this keeps it on its own UTC day, after every other time of that day.
LEAP_SECOND_AS = timedelta(microseconds=999_999)


def parse_visit_time(value: object) -> str | None:
    """An RFC 3339 date-time (no offset means UTC) -> the canonical UTC string, or None.

    A leap second is accepted only where one can occur, 23:59:60 UTC on the last day of a month
    (RFC 3339 section 5.7), and becomes 23:59:59.999 of that day. Fractions beyond milliseconds
    are truncated."""
    if not isinstance(value, str) or len(value) > MAX_DATE_TIME_LENGTH:
        return None
    m = RFC3339_DATE_TIME.fullmatch(value)
    if m is None:
        return None
    second = int(m["second"])
    leap = second == LEAP_SECOND
    try:
        offset = _offset(m)
        moment = datetime(
            int(m["year"]),
            int(m["month"]),
            int(m["day"]),
            int(m["hour"]),
            int(m["minute"]),
            59 if leap else second,
            int((m["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=offset,
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # out of range, or before year 1 / after 9999 in UTC
        return None
    if leap:
        last_day = calendar.monthrange(moment.year, moment.month)[1]
        if (moment.day, moment.hour, moment.minute, moment.second) != (last_day, 23, 59, 59):
            return None
        moment = moment.replace(microsecond=0) + LEAP_SECOND_AS
    return format_utc(moment)


def _offset(m: re.Match) -> timezone:
    if m["sign"] is None:
        return UTC  # "Z", or none at all
    hours, minutes = int(m["offset_hour"]), int(m["offset_minute"])
    if hours > 23 or minutes > 59:  # RFC 3339's time-hour and time-minute ranges
        raise ValueError("offset out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if m["sign"] == "-" else delta)


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    return format_utc(datetime.now(UTC))
