"""Clients (one per API key) through the handlers on moto: each sees only its own jobs on every route
that takes a job id, an export id or an upload id, or lists jobs; another client's answers exactly as
an unknown one does; the admin key sees every client's jobs. Through the local stack with real keys:
tests/e2e/test_tenants.py."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import boto3
import pytest
from harness import make_image, topic_inbox
from reliability import record

from retail_pulse import handler_kit
from retail_pulse.domain.models import ReportCounters, Tally
from retail_pulse.domain.tenancy import DEFAULT_CLIENT

A, B, ADMIN = "keyida0001", "keyidb0002", "keyidadmin"
UNKNOWN = "0" * 32


@pytest.fixture
def tenants(stack, monkeypatch):
    monkeypatch.setenv("ADMIN_API_KEY_IDS", f"{ADMIN}, other-admin")
    stack.reset_caches()
    return stack


@pytest.fixture
def image(image_server):
    return image_server.add("/tenants/ok.jpg", make_image("JPEG", 30, 20))


def visit(urls, store="RP00001"):
    return {"store_id": store, "image_url": list(urls), "visit_time": "2024-03-15T10:00:00Z"}


def job_routes(job_id: str) -> list[tuple[str, str, dict]]:
    """Every route that takes a job id (the read-only ones first: they change nothing for A)."""
    return [
        ("GET", "/api/status", {"jobid": job_id}),
        ("GET", "/api/results", {"jobid": job_id}),
        ("GET", "/api/results", {"jobid": job_id, "order": "processed"}),
        ("POST", "/api/results/export", {"jobid": job_id}),
        ("POST", "/api/jobs/pause", {"jobid": job_id}),
        ("POST", "/api/jobs/resume", {"jobid": job_id}),
        ("POST", "/api/jobs/cancel", {"jobid": job_id}),
        ("POST", "/api/jobs/retry", {"jobid": job_id}),
    ]


def listed(stack, key, **query) -> list[str]:
    ids, token = [], None
    while True:
        code, page = stack.api("GET", "/api/jobs", query=query | ({"next_token": token} if token else {}), key=key)
        assert code == 200, page
        ids += [j["job_id"] for j in page["jobs"]]
        token = page["next_token"]
        if not token:
            return ids


def same_answer(theirs: tuple[int, dict], unknown: tuple[int, dict], their_id: str) -> bool:
    """The same status and the same words as for an id that does not exist (only the id differs)."""
    return theirs[0] == unknown[0] and theirs[1]["error"].replace(their_id, "ID") == unknown[1]["error"].replace(
        UNKNOWN, "ID"
    )


def test_another_clients_job_answers_like_an_unknown_one_on_every_route(tenants, image):
    stack = tenants
    ongoing = stack.submit_job([visit([image])], key=A)  # not processed yet: pause and cancel would succeed
    ended = stack.submit_job([visit([image], store="NOPE")], key=A)  # failed at submit: retry would succeed
    cases = 0
    for job_id in (ongoing, ended):
        for method, path, query in job_routes(job_id):
            theirs = stack.api(method, path, query=query, key=B)
            unknown = stack.api(method, path, query={**query, "jobid": UNKNOWN}, key=B)
            assert theirs[0] == 400 and same_answer(theirs, unknown, job_id), (path, theirs, unknown)
            cases += 1
    # Nothing happened to A's jobs: still ongoing, never retried, no export, and B listed none of them.
    code, status = stack.api("GET", "/api/status", query={"jobid": ongoing}, key=A)
    assert code == 200 and status["status"] == "ongoing"
    code, status = stack.api("GET", "/api/status", query={"jobid": ended}, key=A)
    assert "retried_by" not in status
    assert stack.export_all() == 0
    assert listed(stack, B) == []
    record("tenants (in-process): another client's job id on every job route: as unknown", cases)


def test_another_clients_export_and_upload_answer_like_unknown_ones(tenants, image):
    stack = tenants
    job_id = stack.submit_job([visit([image])], key=A)
    stack.drain()
    code, started = stack.api("POST", "/api/results/export", query={"jobid": job_id}, key=A)
    assert code == 202, started
    assert stack.export_all() == 1
    export_id = started["export_id"]
    code, ready = stack.api("GET", "/api/results/export", query={"export_id": export_id}, key=A)
    assert code == 200 and ready["state"] == "ready" and ready["url"]
    theirs = stack.api("GET", "/api/results/export", query={"export_id": export_id}, key=B)
    unknown = stack.api("GET", "/api/results/export", query={"export_id": UNKNOWN}, key=B)
    assert theirs[0] == 400 and "url" not in theirs[1] and same_answer(theirs, unknown, export_id)
    assert stack.api("GET", "/api/results/export", query={"export_id": export_id}, key=ADMIN)[0] == 200
    # An upload is its client's: B's submit of A's upload_id finds no file, as for an id never issued.
    manifest = f"store_id,image_url,visit_time\nRP00001,{image},2024-03-15T10:00:00Z\n".encode()
    upload_id = stack.upload(manifest, key=A)
    theirs = stack.api("POST", "/api/submit", body={"manifest": upload_id}, key=B)
    unknown = stack.api("POST", "/api/submit", body={"manifest": UNKNOWN}, key=B)
    assert theirs[0] == 400 and same_answer(theirs, unknown, upload_id), theirs
    code, accepted = stack.api("POST", "/api/submit", body={"manifest": upload_id}, key=A)
    assert code == 201, accepted
    stack.fan_out_all()
    stack.drain()
    code, status = stack.api("GET", "/api/status", query={"jobid": accepted["job_id"]}, key=A)
    assert status["status"] == "completed" and accepted["job_id"] in listed(stack, A)
    assert stack.api("GET", "/api/status", query={"jobid": accepted["job_id"]}, key=B)[0] == 400
    record("tenants (in-process): another client's export id or upload id: as unknown", 2)


def test_each_client_lists_only_its_own_jobs_and_the_admin_lists_all(tenants, image):
    stack = tenants
    mine = [stack.submit_job([visit([image])], key=A) for _ in range(3)]
    theirs = [stack.submit_job([visit([image])], key=B) for _ in range(2)]
    failed_b = stack.submit_job([visit([image], store="NOPE")], key=B)
    assert listed(stack, A) == mine[::-1]
    assert listed(stack, A, limit=1) == mine[::-1]  # paged: the token stays in A's partition
    assert listed(stack, B) == [failed_b, *theirs[::-1]]
    assert listed(stack, B, status="failed") == [failed_b]
    assert listed(stack, A, status="failed") == []
    assert listed(stack, B, status="ongoing", limit=1) == theirs[::-1]
    assert set(listed(stack, ADMIN)) == {*mine, *theirs, failed_b}
    assert listed(stack, ADMIN, status="failed") == [failed_b]
    assert listed(stack, None) == []  # the default client (no key checked) has no jobs here
    stack.drain()
    assert listed(stack, A, status="completed") == mine[::-1]
    assert listed(stack, B, status="completed") == theirs[::-1]


def test_labels_list_the_callers_own_jobs_only(tenants, image):
    stack = tenants
    labelled = {"count": 1, "visits": [visit([image])], "labels": {"campaign": "spring"}}
    code, a_job = stack.api("POST", "/api/submit", body=labelled, key=A)
    code, b_job = stack.api("POST", "/api/submit", body=labelled, key=B)
    assert code == 201
    assert listed(stack, A, label="campaign:spring") == [a_job["job_id"]]
    assert listed(stack, B, label="campaign:spring") == [b_job["job_id"]]
    code, body = stack.api("GET", "/api/jobs", query={"label": "campaign:spring"}, key=ADMIN)
    assert code == 400 and body["error"].startswith("label:"), body


def test_a_token_from_another_clients_listing_is_refused(tenants, image):
    stack = tenants
    for key in (A, A, B, B):
        stack.submit_job([visit([image])], key=key)
    for holder, other in ((A, B), (B, A), (ADMIN, A), (A, ADMIN)):
        _, page = stack.api("GET", "/api/jobs", query={"limit": 1}, key=holder)
        assert page["next_token"]
        code, body = stack.api("GET", "/api/jobs", query={"limit": 1, "next_token": page["next_token"]}, key=other)
        assert code == 400 and body["error"].startswith("next_token"), body
    record("tenants (in-process): next_token of another client's listing: refused", 4)


def test_the_admin_reads_cancels_and_retries_any_clients_job(tenants, image, image_server):
    stack = tenants
    broken = image_server.add("/tenants/broken.jpg", b"not an image")
    job_a = stack.submit_job([visit([image, broken])], key=A)
    stack.drain()
    code, status = stack.api("GET", "/api/status", query={"jobid": job_a}, key=ADMIN)
    assert code == 200 and status["status"] == "failed"
    assert len(stack.results(job_a, key=ADMIN)) == 2
    code, retried = stack.api("POST", "/api/jobs/retry", query={"jobid": job_a}, key=ADMIN)
    assert code == 201, retried
    # The retry job is still the client's: A sees it, B does not.
    assert stack.api("GET", "/api/status", query={"jobid": retried["job_id"]}, key=A)[0] == 200
    assert stack.api("GET", "/api/status", query={"jobid": retried["job_id"]}, key=B)[0] == 400
    assert retried["job_id"] in listed(stack, A)
    job_b = stack.submit_job([visit([image])], key=B)
    code, cancelled = stack.api("POST", "/api/jobs/cancel", query={"jobid": job_b}, key=ADMIN)
    assert code == 200 and cancelled["status"] == "cancelled"


def test_jobs_from_before_clients_are_only_the_admins(tenants, image):
    stack = tenants
    job_id = stack.submit_job([visit([image])], key=A)
    boto3.client("dynamodb").update_item(  # as a job item written before jobs had clients
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="REMOVE client_id",
    )
    for key in (A, B, None):
        assert stack.api("GET", "/api/status", query={"jobid": job_id}, key=key)[0] == 400
    assert stack.api("GET", "/api/status", query={"jobid": job_id}, key=ADMIN)[0] == 200
    assert job_id in listed(stack, ADMIN)
    assert job_id not in listed(stack, A)


def test_the_same_idempotency_key_of_two_clients_makes_two_jobs(tenants, image):
    stack = tenants
    body = {"count": 1, "visits": [visit([image])]}
    headers = {"Idempotency-Key": "order-42"}
    code_a, first_a = stack.api("POST", "/api/submit", body=body, headers=headers, key=A)
    code_b, first_b = stack.api("POST", "/api/submit", body=body, headers=headers, key=B)
    assert code_a == code_b == 201
    assert first_a["job_id"] != first_b["job_id"]
    # Each client's retry replays its own answer; B's key with another body does not touch A's record.
    assert stack.api("POST", "/api/submit", body=body, headers=headers, key=A)[1] == first_a
    other = {"count": 1, "visits": [visit([image], store="RP00002")]}
    assert stack.api("POST", "/api/submit", body=other, headers=headers, key=B)[0] == 409
    assert stack.api("POST", "/api/submit", body=body, headers=headers, key=A)[1] == first_a
    record("tenants (in-process): the same Idempotency-Key from two clients: two jobs", 2)


def test_without_a_key_the_client_is_the_documented_default(tenants, image):
    stack = tenants
    job_id = stack.submit_job([visit([image])])
    item = boto3.client("dynamodb").get_item(
        TableName=stack.stack.refs["JobsTable"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]
    assert item["client_id"] == {"S": DEFAULT_CLIENT}
    assert stack.api("GET", "/api/status", query={"jobid": job_id}, key=DEFAULT_CLIENT)[0] == 200


def test_each_clients_images_share_one_fair_queue_group_whatever_the_job(tenants, image):
    """SQS fair queues keep a noisy message group from delaying the others: the group is the client,
    so one client's many jobs count as one tenant against another's (inline, retried or fanned out)."""
    stack = tenants
    for _ in range(2):
        stack.submit_job([visit([image, image])], key=A)
    stack.submit_job([visit([image])], key=B)
    manifest = f"store_id,image_url,visit_time\nRP00001,{image},2024-03-15T10:00:00Z\n".encode()
    stack.submit_manifest(manifest, key=B)
    stack.fan_out_all()
    groups: dict[str, set[str]] = {}
    for message in stack.receive(10):
        body = json.loads(message["Body"])
        groups.setdefault(message["Attributes"]["MessageGroupId"], set()).add(body["job_id"])
    assert {group: len(jobs) for group, jobs in groups.items()} == {A: 2, B: 2}


def test_visits_are_the_callers_own_and_the_admin_sees_every_clients(tenants, image):
    stack = tenants
    area, store = "7100015", "RP00001"  # the sample Store Master's
    stack.submit_job([visit([image, image, image], store=store)], key=A)
    stack.submit_job([visit([image], store=store)], key=B)
    stack.submit_job([visit([image], store="RP00002")], key=B)
    stack.drain()

    def images(key, **query) -> int:
        out, token = 0, None
        while True:
            params = {"area": area, "limit": 1, **query} | ({"next_token": token} if token else {})
            code, page = stack.api("GET", "/api/visits", query=params, key=key)
            assert code == 200, page
            out += sum(len(day["perimeter"]) for entry in page["results"] for day in entry["data"])
            token = page["next_token"]
            if not token:
                return out

    assert (images(A, storeid=store), images(B, storeid=store), images(ADMIN, storeid=store)) == (3, 1, 4)
    assert (images(A), images(B), images(ADMIN)) == (3, 2, 5)
    assert images(None) == 0  # the default client has none here
    _, page = stack.api("GET", "/api/visits", query={"area": area, "limit": 1}, key=A)
    code, body = stack.api(
        "GET", "/api/visits", query={"area": area, "limit": 1, "next_token": page["next_token"]}, key=B
    )
    assert code == 400 and body["error"].startswith("next_token"), body
    record("tenants (in-process): visits per client, paged one image at a time; another's token refused", 4)


def test_reports_are_the_callers_own_and_the_admin_sums_every_clients(tenants, image, image_server):
    """Area and store reports count the caller's images only; the admin's sum every client's and the
    counters from before reports were per client (written here as the counting transaction writes them)."""
    stack = tenants
    area = "7100015"  # the sample Store Master's
    missing = image_server.url("/tenants/missing.jpg")
    stack.submit_job([visit([image, image, missing])], key=A)
    stack.submit_job([visit([image]), visit([image], store="RP00002")], key=B)
    stack.drain()
    before_clients = Tally(
        areas={("", area): ReportCounters(images=7, failed=1, visits=2, attempts=7)},
        stores={("", area, "RP00003"): ReportCounters(images=7, failed=1, visits=2, attempts=7)},
    )
    assert handler_kit.jobs().apply("shardId-legacy", "1", "1", before_clients, time.monotonic() + 30).applied

    def area_report(key) -> tuple[int, int, int]:
        code, body = stack.api("GET", "/api/reports/areas", key=key)
        assert code == 200, body
        entry = next(a for a in body["areas"] if a["area"] == area)
        return entry["images"], entry["failed_images"], entry["visits"]

    def store_report(key) -> dict[str, int]:
        code, body = stack.api("GET", "/api/reports/stores", query={"area": area}, key=key)
        assert code == 200, body
        return {s["store_id"]: s["images"] for s in body["stores"]}

    assert (area_report(A), area_report(B), area_report(None)) == ((3, 1, 1), (2, 0, 2), (0, 0, 0))
    assert area_report(ADMIN) == (3 + 2 + 7, 1 + 1, 1 + 2 + 2)
    assert store_report(A) == {"RP00001": 3}
    assert store_report(B) == {"RP00001": 1, "RP00002": 1}
    assert store_report(ADMIN) == {"RP00001": 4, "RP00002": 1, "RP00003": 7}
    code, body = stack.api("GET", "/api/reports/stores", query={"area": area, "storeid": "RP00002"}, key=A)
    assert code == 200 and [(s["store_id"], s["images"]) for s in body["stores"]] == [("RP00002", 0)]
    record("tenants (in-process): area and store reports per client; the admin's sum all", 3)


def test_a_client_that_only_sends_manifests_counts_in_the_admins_report(tenants, image):
    stack = tenants
    area = "7100015"

    def admin_images() -> int:
        _, body = stack.api("GET", "/api/reports/areas", key=ADMIN)
        return next(a for a in body["areas"] if a["area"] == area)["images"]

    before = admin_images()
    stack.submit_manifest(f"store_id,image_url,visit_time\nRP00001,{image},2024-03-15T10:00:00Z\n".encode(), key=B)
    stack.fan_out_all()
    stack.drain()
    assert admin_images() == before + 1


def test_a_subscription_filtered_on_client_id_gets_only_that_clients_job_events(tenants, image):
    stack = tenants
    inbox = topic_inbox(stack.stack.refs["JobEventsTopic"], "client-a-events", {"client_id": [A]})
    mine = stack.submit_job([visit([image], store="NOPE")], key=A)  # ended at submit: its notice goes out
    stack.submit_job([visit([image], store="NOPE")], key=B)
    got = (
        boto3.client("sqs")
        .receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        .get("Messages", [])
    )
    assert [json.loads(m["Body"])["job_id"] for m in got] == [mine]


def test_each_client_verifies_its_callbacks_with_its_own_key_and_not_anothers(tenants, image, monkeypatch):
    from harness import CallbackServer

    stack = tenants
    monkeypatch.setenv("CALLBACK_SIGNING_SECRET_ARN", stack.stack.refs["CallbackSigningSecret"])  # callbacks on
    stack.reset_caches()
    keys = {key: stack.api("GET", "/api/callbacks/key", key=key)[1] for key in (A, B)}
    assert keys[A]["client_id"] == A and keys[B]["client_id"] == B
    assert keys[A]["signing_key"] != keys[B]["signing_key"]
    server = CallbackServer()
    try:
        body = {"count": 1, "visits": [visit([image], store="NOPE")], "callback_url": server.url}
        assert stack.api("POST", "/api/submit", body=body, key=A)[0] == 201  # ended at submit: called back
        [(headers, raw)] = server.calls
    finally:
        server.close()

    def signed_with(key: str) -> bool:
        expected = "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(headers["X-Retail-Pulse-Signature"], expected)

    assert signed_with(keys[A]["signing_key"]) and not signed_with(keys[B]["signing_key"])
    record("tenants (in-process): a client's callback verifies with its own key only", 1)
