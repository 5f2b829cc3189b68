"""visit_time through submit, processing and /api/visits (handlers on moto): what RFC 3339 refuses
is a 400 naming RFC 3339 with nothing written; a leap second and a space separator are accepted, the
leap second kept on its own UTC day."""

from __future__ import annotations

import pytest
from harness import make_image
from reliability import record

NOT_RFC3339 = [
    "2024-03-15T10:00Z",
    "2024-03-15T10",
    "2024-W11-5T10:00:00Z",
    "20240315T100000Z",
    "2024-03-15T10:00:00,5Z",
]
AREA = "7100015"  # RP00001 in the sample Store Master


@pytest.mark.parametrize("visit_time", NOT_RFC3339)
def test_iso8601_forms_that_are_not_rfc3339_are_400_and_write_nothing(stack, visit_time):
    visit = {"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"], "visit_time": visit_time}
    status, body = stack.api("POST", "/api/submit", body={"count": 1, "visits": [visit]})
    assert status == 400
    assert body == {"error": "visits[0].visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z"}
    assert stack.items() == [] and stack.queue_depth() == 0
    status, body = stack.api("GET", "/api/visits", query={"area": AREA, "startdate": visit_time})
    assert status == 400 and body["error"].startswith("startdate: must be YYYY-MM-DD or an RFC 3339 date-time")
    record("input: visit_time outside RFC 3339 refused, RFC 3339 forms (leap second, space) accepted", 2)


def test_a_leap_second_and_a_space_separator_are_accepted_and_the_leap_second_stays_on_its_day(stack, image_server):
    url = image_server.add("/visit-time/a.png", make_image("PNG", 10, 20), "image/png")
    visits = [
        {"store_id": "RP00001", "image_url": [url], "visit_time": "2016-12-31T23:59:60Z"},
        {"store_id": "RP00001", "image_url": [url], "visit_time": "2017-01-01 05:29:60+05:30"},
        {"store_id": "RP00001", "image_url": [url], "visit_time": "2017-01-01 00:00:00Z"},
    ]
    job_id = stack.submit_job(visits)
    stack.drain()
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id})
    assert [r["visit_time"] for r in page["results"]] == [v["visit_time"] for v in visits]  # as submitted
    assert all(r["status"] == "succeeded" for r in page["results"])
    status, body = stack.api(
        "GET", "/api/visits", query={"area": AREA, "storeid": "RP00001", "startdate": "2016-12-31 23:59:60Z"}
    )
    assert status == 200, body
    assert body["results"][0]["data"] == [
        {"date": "2016-12-31", "perimeter": [60, 60]},  # both leap seconds: 23:59:59.999 UTC
        {"date": "2017-01-01", "perimeter": [60]},
    ]
    record("input: visit_time outside RFC 3339 refused, RFC 3339 forms (leap second, space) accepted", len(visits))
