"""Property-based fuzzing of submit, status and results through the real handlers on moto: whatever
the input, no 5xx, and a rejected submit writes nothing (no DynamoDB item, no SQS message)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability import record

# Modest counts: the whole file runs in seconds. The stack fixture is shared by the examples on
# purpose (each example compares the table and queue before and after itself).
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
)
urls = st.one_of(
    st.just("https://images.example.com/a.jpg"),
    st.text(max_size=40).map(lambda t: "https://images.example.com/" + t),
    st.text(max_size=30).map(lambda t: "http://" + t),
    st.text(max_size=30),
    json_values,
)
visit_times = st.one_of(
    st.sampled_from(["2024-03-15T10:00:00Z", "2024-03-15T10:00:00+05:30", "2024-02-30T10:00:00Z", "2024-03-15"]),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=70),
    json_values,
)
visits = st.fixed_dictionaries(
    {},
    optional={
        "store_id": st.one_of(
            st.sampled_from(["RP00001", "RP00002", "NOPE1", "", " "]), st.text(max_size=80), json_values
        ),
        "image_url": st.one_of(st.lists(urls, max_size=4), json_values),
        "visit_time": visit_times,
        "extra": json_values,
    },
)


@st.composite
def submit_bodies(draw) -> str:
    kind = draw(st.sampled_from(["job", "job", "job", "json", "text"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values))
    job_visits = draw(st.one_of(st.lists(visits, max_size=5), json_values))
    count = len(job_visits) if isinstance(job_visits, list) and draw(st.booleans()) else draw(json_values)
    body = {"count": count, "visits": job_visits}
    if draw(st.booleans()):
        body = {k: v for k, v in body.items() if draw(st.booleans())}
    return json.dumps(body)


def snapshot(stack) -> tuple[int, int]:
    return len(stack.items()), stack.queue_depth()


def test_fuzzed_submit_bodies_never_5xx_and_rejections_write_nothing(stack):
    outcomes = {"accepted": 0, "rejected": 0}

    @FUZZ
    @given(body=submit_bodies())
    def run(body: str) -> None:
        before = snapshot(stack)
        status, response = stack.api("POST", "/api/submit", body=body)
        assert status < 500, (status, response, body)
        assert isinstance(response.get("error") if status >= 400 else response.get("job_id"), str)
        if status == 201:
            outcomes["accepted"] += 1
        else:
            outcomes["rejected"] += 1
            assert 400 <= status < 500
            assert snapshot(stack) == before, body

    run()
    assert outcomes["rejected"] > 0
    record("fuzz: submit bodies (hypothesis, real handler on moto)", sum(outcomes.values()))


query_values = st.one_of(st.text(max_size=150), st.integers(-5, 2000).map(str), st.just(""))


def test_fuzzed_status_and_results_queries_never_5xx_and_write_nothing(stack):
    job_id = stack.submit_job(
        [{"store_id": "NOPE1", "image_url": ["https://images.example.com/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    stack.pump_streams()  # what the job's writes set off is done before the reads are fuzzed
    cases = {"n": 0}

    @FUZZ
    @given(
        path=st.sampled_from(["/api/status", "/api/results"]),
        jobid=st.one_of(st.none(), st.just(job_id), query_values),
        limit=st.one_of(st.none(), query_values),
        next_token=st.one_of(st.none(), query_values),
    )
    def run(path, jobid, limit, next_token) -> None:
        query = {k: v for k, v in {"jobid": jobid, "limit": limit, "next_token": next_token}.items() if v is not None}
        before = snapshot(stack)
        status, response = stack.api("GET", path, query=query or None)
        assert status < 500, (status, response, query)
        assert status == 200 or set(response) == {"error"}
        assert snapshot(stack) == before
        cases["n"] += 1

    run()
    record("fuzz: status/results queries (hypothesis, real handler on moto)", cases["n"])
