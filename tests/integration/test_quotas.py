"""Images in flight per client (CLIENT_IMAGE_QUOTA) and per job (max_concurrency), through the
submit and process_image handlers on moto: a batch measures what its claims got, parks the rest
(acknowledged, not returned to the queue), and each release replays what there is room for; every
image ends once. Under concurrent load through the local stack: tests/e2e/test_quotas.py."""

from __future__ import annotations

import time
from collections import Counter

import boto3
import pytest
from harness import make_image
from reliability import record

from retail_pulse.adapters.dynamodb.items import from_item
from retail_pulse.domain.quota import EPOCH_S, STALE_CLAIM_S, client_owner, epoch_of

A, B = "keyida0001", "keyidb0002"


@pytest.fixture
def images(image_server):
    body = make_image("JPEG", 30, 20)
    return lambda folder, n: [image_server.add(f"/{folder}/{i}.jpg", body) for i in range(n)]


def submit(stack, urls, key=A, **controls) -> str:
    visits = [{"store_id": "RP00001", "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"}]
    code, body = stack.api("POST", "/api/submit", body={"count": 1, "visits": visits, **controls}, key=key)
    assert code == 201, body
    return body["job_id"]


def items(stack, prefix: str) -> list[dict]:
    plain = [from_item(i) for i in stack.items()]
    return [i for i in plain if i["pk"].startswith(prefix)]


def in_flight(stack) -> dict[str, int]:
    return {i["pk"]: int(i.get("n", 0)) for i in items(stack, "SLOTS#")}


def finished(stack, job_id, key=A) -> dict:
    _, body = stack.api("GET", "/api/status", query={"jobid": job_id}, key=key)
    return body


def test_a_batch_measures_up_to_max_concurrency_and_parks_the_rest(stack, images, image_server):
    urls = images("capped", 20)
    job_id = submit(stack, urls, max_concurrency=3)
    assert finished(stack, job_id)["max_concurrency"] == 3
    messages = stack.receive()
    assert len(messages) == 10
    seen = len(image_server.requests)  # the server is shared by this session's tests
    assert stack.invoke_process(messages) == set()  # every message acknowledged: measured or parked
    assert len(image_server.requests) - seen == 3
    parked = sum(len(i["messages"]) for i in items(stack, f"JOB#{job_id}#PARK"))
    assert parked == 7 - 3  # its release had room for 3 again: those went back to the queue
    assert set(in_flight(stack).values()) == {0}
    stack.drain()
    status = finished(stack, job_id)
    assert (status["status"], status["progress"]["succeeded"], status["progress"]["failed"]) == ("completed", 20, 0)
    assert Counter(image_server.requests[seen:]) == Counter(u.removeprefix(image_server.base) for u in urls)
    assert not items(stack, f"JOB#{job_id}#PARK")
    record("quota: a job's max_concurrency caps each batch; the rest parked and replayed", 20)


def test_a_clients_quota_caps_its_images_and_not_another_clients(stack, images, image_server, monkeypatch):
    monkeypatch.setenv("CLIENT_IMAGE_QUOTA", "4")
    stack.reset_caches()
    mine = [submit(stack, images(f"quota-a{n}", 10), key=A) for n in range(2)]
    theirs = submit(stack, images("quota-b", 6), key=B)
    seen = len(image_server.requests)  # the server is shared by this session's tests
    first = stack.receive()
    stack.invoke_process(first)
    by_client = Counter(path.split("/")[1][:7] for path in image_server.requests[seen:])
    assert by_client["quota-a"] <= 4 and by_client["quota-b"] <= 4
    stack.drain()
    for job_id, key, total in [(mine[0], A, 10), (mine[1], A, 10), (theirs, B, 6)]:
        status = finished(stack, job_id, key)
        assert (status["status"], status["progress"]["succeeded"]) == ("completed", total), status
    mine_and_theirs = image_server.requests[seen:]
    assert len(mine_and_theirs) == len(set(mine_and_theirs)) == 26
    assert set(in_flight(stack).values()) == {0}
    record("quota: a client's quota caps its batches; every image measured once", 26)


def test_a_claim_of_an_invocation_that_died_is_taken_back(stack, images, image_server, monkeypatch):
    """A counter full of claims made long ago (their invocation never released them) blocks nothing:
    the first refused claim takes that minute back."""
    monkeypatch.setenv("CLIENT_IMAGE_QUOTA", "4")
    stack.reset_caches()
    old = epoch_of(time.time() - STALE_CLAIM_S - 2 * EPOCH_S)
    boto3.client("dynamodb").put_item(
        TableName=stack.stack.refs["JobsTable"],
        Item={
            "pk": {"S": f"SLOTS#{client_owner(A)}"},
            "sk": {"S": "SLOTS"},
            "n": {"N": "4"},
            f"e{old}": {"N": "4"},
        },
    )
    job_id = submit(stack, images("stale", 8))
    stack.drain()
    assert finished(stack, job_id)["progress"]["succeeded"] == 8
    counter = items(stack, f"SLOTS#{client_owner(A)}")[0]
    assert counter["n"] == 0 and f"e{old}" not in counter
    record("quota: slots held by a dead invocation are taken back", 1)


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True])
def test_a_bad_max_concurrency_is_refused_and_writes_nothing(stack, images, value):
    before = len(stack.items())
    visits = [{"store_id": "RP00001", "image_url": images("bad", 1), "visit_time": "2024-03-15T10:00:00Z"}]
    code, body = stack.api("POST", "/api/submit", body={"count": 1, "visits": visits, "max_concurrency": value})
    assert code == 400 and "max_concurrency" in body["error"], body
    assert len(stack.items()) == before


def test_a_retry_keeps_its_jobs_max_concurrency(stack, images, image_server):
    job_id = submit(stack, [*images("retry-cap", 2), image_server.url("/retry-cap/missing.jpg")], max_concurrency=2)
    stack.drain()
    assert finished(stack, job_id)["status"] == "failed"
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id}, key=A)
    assert code in (200, 201), body
    assert finished(stack, body["job_id"])["max_concurrency"] == 2
