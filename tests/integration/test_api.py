"""The API contract through the real handlers, with API Gateway proxy events and moto."""

from __future__ import annotations

import json

import pytest
from harness import LambdaContext, api_event

GOOD_VISIT = {"store_id": "RP00001", "image_url": ["https://example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}


def body_of(visits, count=None):
    return {"count": len(visits) if count is None else count, "visits": visits}


@pytest.mark.parametrize("path", ["/api/submit", "/api/submit/"])
def test_submit_accepts_a_job_on_both_paths(stack, path):
    status, body = stack.api("POST", path, body=body_of([GOOD_VISIT]))
    assert status == 201
    assert isinstance(body["job_id"], str) and len(body["job_id"]) >= 32
    assert stack.queue_depth() == 1
    status, job = stack.api("GET", "/api/status", query={"jobid": body["job_id"]})
    assert status == 200
    assert job["status"] == "ongoing"
    assert job["progress"] == {"total": 1, "processed": 0, "succeeded": 0, "failed": 0}
    assert job["created_at"].endswith("Z") and job["finished_at"] is None


def visit(**changes):
    v = dict(GOOD_VISIT)
    v.update(changes)
    return v


def without(key):
    return {k: v for k, v in GOOD_VISIT.items() if k != key}


BAD_BODIES = [
    ("not json", "{nope", "body"),
    ("array body", "[]", "body"),
    ("string body", '"x"', "body"),
    ("empty body", "", "body"),
    ("count missing", {"visits": [GOOD_VISIT]}, "count"),
    ("count a string", {"count": "1", "visits": [GOOD_VISIT]}, "count"),
    ("count a float", {"count": 1.5, "visits": [GOOD_VISIT]}, "count"),
    ("count a bool", {"count": True, "visits": [GOOD_VISIT]}, "count"),
    ("visits missing", {"count": 1}, "visits"),
    ("visits not a list", {"count": 1, "visits": {"a": 1}}, "visits"),
    ("visits empty", {"count": 0, "visits": []}, "visits"),
    ("count mismatch", {"count": 2, "visits": [GOOD_VISIT]}, "count"),
    ("visit not an object", body_of([GOOD_VISIT, "x"]), "visits[1]"),
    ("store_id missing", body_of([without("store_id")]), "visits[0].store_id"),
    ("image_url missing", body_of([without("image_url")]), "visits[0].image_url"),
    ("visit_time missing", body_of([without("visit_time")]), "visits[0].visit_time"),
    ("store_id empty", body_of([visit(store_id="  ")]), "visits[0].store_id"),
    ("store_id a number", body_of([visit(store_id=5)]), "visits[0].store_id"),
    ("image_url a string", body_of([visit(image_url="https://x/a.jpg")]), "visits[0].image_url"),
    ("image_url empty", body_of([visit(image_url=[])]), "visits[0].image_url"),
    ("image_url relative", body_of([GOOD_VISIT, GOOD_VISIT, visit(image_url=["/a.jpg"])]), "visits[2].image_url[0]"),
    ("image_url ftp", body_of([visit(image_url=["https://x/a.jpg", "ftp://x/a.jpg"])]), "visits[0].image_url[1]"),
    ("image_url not a string", body_of([visit(image_url=[7])]), "visits[0].image_url[0]"),
    ("visit_time a date", body_of([visit(visit_time="2024-03-15")]), "visits[0].visit_time"),
    ("visit_time garbage", body_of([visit(visit_time="yesterday")]), "visits[0].visit_time"),
    ("visit_time a number", body_of([visit(visit_time=1710496800)]), "visits[0].visit_time"),
    ("visit_time bad month", body_of([visit(visit_time="2024-13-15T10:00:00Z")]), "visits[0].visit_time"),
    (
        "visit_time before year 1 in UTC",
        body_of([visit(visit_time="0001-01-01T00:00:00+01:00")]),
        "visits[0].visit_time",
    ),
    ("visit_time after 9999 in UTC", body_of([visit(visit_time="9999-12-31T23:59:59-01:00")]), "visits[0].visit_time"),
    ("callback_url too long", {**body_of([GOOD_VISIT]), "callback_url": "https://x/" + "a" * 5000}, "callback_url"),
]


@pytest.mark.parametrize(("name", "body", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(stack, name, body, field):
    status, response = stack.api("POST", "/api/submit", body=body if isinstance(body, str) else json.dumps(body))
    assert status == 400
    assert set(response) == {"error"}
    assert response["error"].startswith(field), response
    assert stack.items() == []
    assert stack.queue_depth() == 0


@pytest.mark.parametrize(
    "visit_time",
    ["2024-03-15T10:00:00Z", "2024-03-15T10:00:00+05:30", "2024-03-15T10:00:00", "2024-03-15T10:00:00.123z"],
)
def test_visit_time_forms_accepted(stack, visit_time):
    status, _ = stack.api("POST", "/api/submit", body=body_of([visit(visit_time=visit_time)]))
    assert status == 201


def test_too_many_images_is_a_413_stating_the_limit(stack, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_JOB", "3")
    stack.reset_caches()
    status, body = stack.api("POST", "/api/submit", body=body_of([visit(image_url=["https://x/a.jpg"] * 4)]))
    assert status == 413
    assert "3" in body["error"]
    assert stack.items() == []


def test_unknown_store_is_recorded_failed_at_submit_and_not_enqueued(stack):
    visits = [visit(store_id="NOPE1"), visit(store_id="RP00002", image_url=["https://x/1.jpg", "https://x/2.jpg"])]
    job_id = stack.submit_job(visits)
    assert stack.queue_depth() == 2
    _status, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "ongoing"
    assert job["progress"] == {"total": 3, "processed": 1, "succeeded": 0, "failed": 1}
    assert job["error"] == [{"store_id": "NOPE1", "error": "store_id NOPE1 not in Store Master"}]
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id})
    assert [r["store_id"] for r in page["results"]] == ["NOPE1"]
    assert page["results"][0]["status"] == "failed"


def test_job_of_only_unknown_stores_fails_at_once(stack):
    job_id = stack.submit_job([visit(store_id="NOPE1"), visit(store_id="NOPE2")])
    assert stack.queue_depth() == 0
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "failed"
    assert job["finished_at"] is not None
    assert {e["store_id"] for e in job["error"]} == {"NOPE1", "NOPE2"}


@pytest.mark.parametrize("query", [{}, {"jobid": ""}, {"jobid": "does-not-exist"}])
def test_status_of_missing_or_unknown_job_is_400(stack, query):
    status, body = stack.api("GET", "/api/status", query=query)
    assert status == 400
    assert "jobid" in body["error"]


def test_results_reject_bad_limit_token_and_unknown_job(stack):
    job_id = stack.submit_job([GOOD_VISIT])
    other = stack.submit_job([GOOD_VISIT])
    from retail_pulse.logic.paging import encode_token

    cases = [
        {"jobid": job_id, "limit": "0"},
        {"jobid": job_id, "limit": "1001"},
        {"jobid": job_id, "limit": "ten"},
        {"jobid": job_id, "limit": "-1"},
        {"jobid": job_id, "next_token": "%%%garbage"},
        {"jobid": job_id, "next_token": encode_token(other, 0)},
        {"jobid": "unknown"},
        {},
    ]
    for query in cases:
        status, body = stack.api("GET", "/api/results", query=query)
        assert status == 400, query
        assert set(body) == {"error"}


def test_health_and_unknown_route(stack):
    assert stack.api("GET", "/api/health") == (200, {"status": "ok"})
    # API Gateway answers unknown resources itself; a path a function's resolver does not know is a JSON 404.
    response = stack.status.lambda_handler(api_event("GET", "/api/nothing-here"), LambdaContext())
    assert response["statusCode"] == 404 and "error" in json.loads(response["body"])
