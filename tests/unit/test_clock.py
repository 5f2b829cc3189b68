"""visit_time (and the date-time bounds of /api/visits): RFC 3339 date-times exactly, section 5.6's
grammar, plus the README's one extension (no offset = UTC); a leap second becomes 23:59:59.999."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retail_pulse.domain.clock import format_utc, parse_visit_time
from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.validation import parse_job_request
from retail_pulse.logic.reports import parse_bound

CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
# RFC 3339 section 5.6, written out independently of the parser (ranges are checked apart).
ABNF = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)

ACCEPTED = {
    "2024-03-15T10:00:00Z": "2024-03-15T10:00:00.000Z",
    "2024-03-15t10:00:00z": "2024-03-15T10:00:00.000Z",
    "2024-03-15 10:00:00Z": "2024-03-15T10:00:00.000Z",  # section 5.6 NOTE: a space for "T"
    "2024-03-15T10:00:00": "2024-03-15T10:00:00.000Z",  # no offset: UTC (the README's extension)
    "2024-03-15T10:00:00.5Z": "2024-03-15T10:00:00.500Z",
    "2024-03-15T10:00:00.123456789Z": "2024-03-15T10:00:00.123Z",  # fractions are truncated to ms
    "2024-03-15T11:30:00+05:30": "2024-03-15T06:00:00.000Z",
    "2024-03-15T10:00:00-00:00": "2024-03-15T10:00:00.000Z",  # "unknown local offset": UTC
    "2024-02-29T23:59:59-23:59": "2024-03-01T23:58:59.000Z",
    # Leap seconds: only where one can be (23:59:60 UTC, last day of a month), kept on their day.
    "2016-12-31T23:59:60Z": "2016-12-31T23:59:59.999Z",
    "2016-12-31T23:59:60.5Z": "2016-12-31T23:59:59.999Z",
    "1990-12-31T15:59:60-08:00": "1990-12-31T23:59:59.999Z",  # RFC 3339's own example
    "2015-07-01T05:29:60+05:30": "2015-06-30T23:59:59.999Z",
}
REJECTED = [
    "2024-03-15T10:00Z",  # seconds are required
    "2024-03-15T10",
    "2024-03-15T10:00",
    "2024-W11-5T10:00:00Z",  # ISO 8601 week dates
    "2024-075T10:00:00Z",  # ISO 8601 ordinal dates
    "20240315T100000Z",  # ISO 8601 basic format
    "2024-03-15T10:00:00,5Z",  # a comma before the fraction
    "2024-03-15T10:00:00.Z",
    "2024-03-15T10:00:00+0530",
    "2024-03-15T10:00:00+05",
    "2024-03-15T10:00:00+05:30:00",
    "2024-03-15T10:00:00+24:00",
    "2024-03-15T10:00:00+05:60",
    "2024-03-15T10:00:00UTC",
    "2024-03-15",
    "2024-03-15T",
    "2024-02-30T10:00:00Z",
    "2023-02-29T10:00:00Z",
    "2024-13-01T10:00:00Z",
    "2024-03-15T24:00:00Z",
    "2024-03-15T10:60:00Z",
    "2024-03-15T10:00:61Z",
    "2024-03-15T10:00:60Z",  # not where a leap second can be
    "2016-12-31T23:59:60+01:00",  # 22:59:60 UTC
    "2016-12-30T23:59:60Z",  # not the last day of a month
    "0000-01-01T00:00:00Z",  # no year 0 in Python's calendar
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after 9999 in UTC
    "\uff12\uff10\uff12\uff14-03-15T10:00:00Z",  # fullwidth digits (str.isdigit() takes them)
    "2024-03-15T10:00:00Z ",
    " 2024-03-15T10:00:00Z",
    "2024-03-15\t10:00:00Z",
    "2024-03-15T10:00:00." + "1" * 44 + "Z",  # over 64 characters
    "",
]


@pytest.mark.parametrize(("value", "utc"), ACCEPTED.items())
def test_rfc3339_date_times_are_accepted(value, utc):
    assert parse_visit_time(value) == utc


@pytest.mark.parametrize("value", REJECTED)
def test_what_is_not_rfc3339_is_rejected(value):
    assert parse_visit_time(value) is None


@pytest.mark.parametrize("value", [None, 1710496800, 17.5, ["2024-03-15T10:00:00Z"], b"2024-03-15T10:00:00Z"])
def test_what_is_not_a_string_is_rejected(value):
    assert parse_visit_time(value) is None


def test_the_submit_error_names_rfc3339():
    visit = '{"store_id": "S1", "image_url": ["https://x/a.jpg"], "visit_time": "2024-03-15T10:00Z"}'
    body = f'{{"count": 1, "visits": [{visit}]}}'
    with pytest.raises(InvalidRequest) as err:
        parse_job_request(body, max_images=10)
    assert err.value.message == "visits[0].visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z"


def test_visits_bounds_use_the_same_parser():
    assert parse_bound("2016-12-31 23:59:60Z", "startdate", end_of_day=False) == "2016-12-31T23:59:59.999Z"
    for bad in ("2024-03-15T10:00Z", "20240315T100000Z", "2024-W11-5T10:00:00Z"):
        with pytest.raises(InvalidRequest, match=r"^enddate: must be YYYY-MM-DD or an RFC 3339 date-time"):
            parse_bound(bad, "enddate", end_of_day=True)


# -- properties ------------------------------------------------------------------------------------

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)


def rfc3339(moment: datetime, separator: str, fraction_digits: int, zulu: str) -> str:
    # Not strftime: its %Y does not pad years before 1000 to four digits.
    m = moment
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}{separator}{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if fraction_digits:
        text += "." + f"{moment.microsecond:06d}{'0' * 12}"[:fraction_digits]
    offset = moment.utcoffset() or timedelta(0)
    if offset == timedelta(0) and zulu:
        return text + zulu
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@given(
    moment=moments,
    separator=st.sampled_from(["T", "t", " "]),
    fraction_digits=st.integers(0, 12),
    zulu=st.sampled_from(["Z", "z", ""]),
)
def test_every_rfc3339_rendering_of_a_moment_parses_to_that_moment_in_utc(moment, separator, fraction_digits, zulu):
    text = rfc3339(moment, separator, fraction_digits, zulu)
    parsed = parse_visit_time(text)
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000 if fraction_digits >= 3 else 0)
    if 0 < fraction_digits < 3:
        truncated = moment.replace(microsecond=int(f"{moment.microsecond:06d}"[:fraction_digits].ljust(6, "0")))
    assert parsed == format_utc(truncated)
    assert CANONICAL.fullmatch(parsed)
    assert parse_visit_time(parsed) == parsed  # the canonical form is RFC 3339 too


@given(st.text(alphabet="0123456789-:+.TtZz ,W", max_size=40) | st.text(max_size=40))
def test_only_the_rfc3339_grammar_is_accepted(text):
    parsed = parse_visit_time(text)
    if parsed is not None:
        assert ABNF.fullmatch(text), text
        assert CANONICAL.fullmatch(parsed)


@given(first=moments, second=moments)
def test_canonical_times_sort_as_the_moments_do(first, second):
    a, b = (parse_visit_time(rfc3339(m, "T", 6, "Z")) for m in (first, second))
    if first.astimezone(UTC) < second.astimezone(UTC) - timedelta(milliseconds=1):
        assert a < b
