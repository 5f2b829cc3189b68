"""Job lifecycle through the handlers (moto): list, cancel, retry, completion notices."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import boto3
import pytest
from harness import SIGNING_SECRET as SECRET
from harness import CallbackServer, make_image

from retail_pulse import handler_kit
from retail_pulse.logic.notify import Notifier


@pytest.fixture
def callbacks():
    server = CallbackServer()
    yield server
    server.close()


@pytest.fixture
def image(image_server):
    return image_server.add("/lifecycle/ok.jpg", make_image("JPEG", 30, 20))


def visit(urls, store="RP00001", when="2024-03-15T10:00:00Z"):
    return {"store_id": store, "image_url": list(urls), "visit_time": when}


def status_of(stack, job_id):
    code, body = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert code == 200, body
    return body


# -- list ---------------------------------------------------------------------------------------
def test_jobs_are_listed_newest_first_in_pages_from_the_indexes(lifecycle, image):
    stack = lifecycle
    ids = [stack.submit_job([visit([image])]) for _ in range(3)]
    stack.drain()
    unknown_store = stack.submit_job([visit([image], store="NOPE")])  # ends failed at submit
    code, page = stack.api("GET", "/api/jobs", query={"limit": 2})
    assert code == 200
    assert [j["job_id"] for j in page["jobs"]] == [unknown_store, ids[2]]
    code, rest = stack.api("GET", "/api/jobs", query={"limit": 2, "next_token": page["next_token"]})
    assert [j["job_id"] for j in rest["jobs"]] == [ids[1], ids[0]]
    assert rest["next_token"] is None
    listed = rest["jobs"][0]
    assert listed["status"] == "completed" and listed["finished_at"]
    assert listed["progress"] == {"total": 1, "processed": 1, "succeeded": 1, "failed": 0}

    _, failed = stack.api("GET", "/api/jobs", query={"status": "failed"})
    assert [j["job_id"] for j in failed["jobs"]] == [unknown_store]
    _, completed = stack.api("GET", "/api/jobs", query={"status": "completed", "limit": 100})
    assert [j["job_id"] for j in completed["jobs"]] == ids[::-1]

    # Result items have a `status` too, but no `created_at`: JobsByStatus holds job items only.
    ddb = boto3.client("dynamodb")
    for status in ("succeeded", "failed", "completed"):
        items = ddb.query(
            TableName=stack.stack.refs["JobsTable"],
            IndexName="JobsByStatus",
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )["Items"]
        assert all(i["sk"]["S"] == "JOB" for i in items)
        assert len(items) == {"succeeded": 0, "failed": 1, "completed": 3}[status]


def _token(status, cursor) -> str:
    raw = json.dumps({"s": status, "c": cursor}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        {"next_token": "garbage!"},
        # Well-formed but empty key values: DynamoDB itself would refuse them (moto does not).
        {"next_token": _token(None, {"pk": "", "sk": "JOB", "job_list": "JOB", "job_list_sk": ""})},
        {"next_token": _token(None, {"pk": "JOB#x", "sk": "JOB", "job_list": "JOB", "job_list_sk": ""})},
        {"status": "bogus"},
        {"limit": 0},
        {"limit": 101},
    ],
)
def test_bad_listing_parameters_are_400(lifecycle, query):
    code, body = lifecycle.api("GET", "/api/jobs", query=query)
    assert code == 400 and body["error"].split(":")[0] in query


def test_a_token_of_another_listing_is_400(lifecycle, image):
    for _ in range(2):
        lifecycle.submit_job([visit([image])])
    _, page = lifecycle.api("GET", "/api/jobs", query={"limit": 1})
    code, body = lifecycle.api(
        "GET", "/api/jobs", query={"limit": 1, "status": "ongoing", "next_token": page["next_token"]}
    )
    assert code == 400 and body["error"].startswith("next_token")


# -- cancel -------------------------------------------------------------------------------------
def test_cancel_skips_the_remaining_images_and_keeps_counts_exact(lifecycle, image_server, callbacks):
    stack = lifecycle
    urls = [image_server.add(f"/lifecycle/c{i}.jpg", make_image("JPEG", 10 + i, 10)) for i in range(6)]
    job_id = stack.submit_job([visit(urls)])
    first = stack.receive(max_messages=2)
    assert not stack.invoke_process(first)
    in_flight = stack.receive(max_messages=2)  # received before the cancel, delivered after it

    code, body = stack.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    assert code == 200, body
    assert body["status"] == "cancelled" and body["finished_at"]
    assert body["progress"] == {"total": 6, "processed": 6, "succeeded": 2, "failed": 0, "cancelled": 4}

    downloads = len(image_server.requests)
    assert not stack.invoke_process(in_flight)  # acknowledged, not processed
    stack.drain()
    assert len(image_server.requests) == downloads  # nothing downloaded after the cancel
    assert status_of(stack, job_id)["progress"] == body["progress"]
    assert len(stack.api("GET", "/api/results", query={"jobid": job_id})[1]["results"]) == 2

    code, conflict = stack.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    assert code == 409 and "cancelled" in conflict["error"]
    [event] = stack.events()
    assert (event["job_id"], event["status"], event["progress"]["cancelled"]) == (job_id, "cancelled", 4)


def test_cancel_of_a_finished_or_unknown_job(lifecycle, image):
    job_id = lifecycle.submit_job([visit([image])])
    lifecycle.drain()
    code, body = lifecycle.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    assert code == 409 and "completed" in body["error"]
    assert lifecycle.api("POST", "/api/jobs/cancel", query={"jobid": "nope"})[0] == 400
    assert lifecycle.api("POST", "/api/jobs/cancel")[0] == 400


def test_a_result_written_after_the_cancel_is_dropped_and_never_counted(lifecycle, image):
    stack = lifecycle
    job_id = stack.submit_job([visit([image, image])])
    jobs = handler_kit.jobs()
    [message, _] = stack.receive(max_messages=2)
    from retail_pulse.domain.messages import task_from_message
    from retail_pulse.domain.models import ImageResult

    stack.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    task = task_from_message(message["Body"])
    # A batch that read the job before the cancel writes its result after it:
    written = jobs.record_results([ImageResult(task, "succeeded", "2024-01-01T00:00:00.000Z", 1, 1, 4)])
    assert len(written.written) == 1
    stack.pump_streams()  # the stream consumer meets a cancelled job: the result is deleted, not counted
    assert stack.results(job_id) == []
    assert status_of(stack, job_id)["progress"] == {
        "total": 2,
        "processed": 2,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 2,
    }


# -- notices ------------------------------------------------------------------------------------
def test_one_signed_notice_per_job_even_when_the_finishing_batch_is_delivered_twice(
    lifecycle, image_server, image, callbacks
):
    stack = lifecycle
    other = image_server.add("/lifecycle/other.jpg", make_image("JPEG", 8, 9))
    body = {"count": 1, "visits": [visit([image, other])], "callback_url": callbacks.url}
    code, accepted = stack.api("POST", "/api/submit", body=body)
    assert code == 201, accepted
    job_id = accepted["job_id"]
    messages = stack.receive()
    assert not stack.invoke_process(messages)
    assert not stack.invoke_process(messages)  # the finishing batch again (SQS at-least-once)
    stack.pump_streams()  # the stream consumer counts the results and ends the job
    [event] = stack.events()
    assert event["job_id"] == job_id and event["status"] == "completed"
    assert event["progress"] == {"total": 2, "processed": 2, "succeeded": 2, "failed": 0}
    [(headers, raw)] = callbacks.calls
    assert json.loads(raw) == event
    key = stack.api("GET", "/api/callbacks/key")[1]["signing_key"]  # this client's, as a receiver gets it
    expected = "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Retail-Pulse-Signature"] == expected
    job_item = next(i for i in stack.items() if i["pk"]["S"] == f"JOB#{job_id}" and i["sk"]["S"] == "JOB")
    assert "notices_owed" not in job_item  # the outbox is empty


def test_a_notice_that_could_not_be_published_is_sent_by_a_later_batch_of_the_job(lifecycle, image, monkeypatch):
    stack = lifecycle

    class DownTopic:
        def publish(self, message, subject, client_id=None):
            raise RuntimeError("SNS unavailable")

    working = handler_kit.notifier()
    monkeypatch.setattr(handler_kit, "notifier", lambda: Notifier(DownTopic(), working.callbacks, lambda: SECRET))
    job_id = stack.submit_job([visit([image])])
    messages = stack.receive()
    assert stack.invoke_process(messages) == set()  # the result is written
    stack.pump_streams()  # the job ends; its notice cannot be published and stays owed
    assert status_of(stack, job_id)["status"] == "completed" and stack.events() == []

    monkeypatch.setattr(handler_kit, "notifier", lambda: working)
    assert not stack.invoke_process(messages)  # a redelivered message of the job meets the owed notice
    assert not stack.invoke_process(messages)
    [event] = stack.events()
    assert event["job_id"] == job_id
    assert status_of(stack, job_id)["progress"]["processed"] == 1  # counted once


def test_a_callback_whose_secret_cannot_be_read_is_never_sent_unsigned_and_stays_owed(
    lifecycle, image, callbacks, monkeypatch
):
    stack = lifecycle
    working = handler_kit.notifier()

    def unreadable() -> str:
        raise RuntimeError("Secrets Manager unavailable")

    monkeypatch.setattr(handler_kit, "notifier", lambda: Notifier(working.topic, working.callbacks, unreadable))
    code, accepted = stack.api(
        "POST", "/api/submit", body={"count": 1, "visits": [visit([image])], "callback_url": callbacks.url}
    )
    assert code == 201, accepted
    messages = stack.receive()
    assert stack.invoke_process(messages) == set()
    stack.pump_streams()  # the job ends: the topic is published, the callback cannot be signed
    assert callbacks.calls == [] and len(stack.events()) == 1
    job_item = next(i for i in stack.items() if i["pk"]["S"] == f"JOB#{accepted['job_id']}" and i["sk"]["S"] == "JOB")
    assert job_item["notices_owed"] == {"SS": ["callback"]}

    monkeypatch.setattr(handler_kit, "notifier", lambda: working)  # the secret readable again
    assert not stack.invoke_process(messages)  # a redelivered message of the job meets the owed notice
    [(headers, raw)] = callbacks.calls
    key = stack.api("GET", "/api/callbacks/key")[1]["signing_key"]
    assert headers["X-Retail-Pulse-Signature"] == "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
    assert stack.events() == []  # the topic was not published again


def test_callback_url_is_validated_like_image_urls(lifecycle, image):
    body = {"count": 1, "visits": [visit([image])], "callback_url": "ftp://example.com/x"}
    code, error = lifecycle.api("POST", "/api/submit", body=body)
    assert code == 400 and error["error"].startswith("callback_url")


# -- retry --------------------------------------------------------------------------------------
def test_retry_makes_a_linked_job_of_the_failed_images(lifecycle, image_server, image):
    stack = lifecycle
    missing = image_server.url("/lifecycle/later.jpg")
    job_id = stack.submit_job([visit([image, missing]), visit([missing], store="RP00002")])
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})
    assert code == 409 and "ongoing" in body["error"]
    stack.drain()
    assert status_of(stack, job_id)["status"] == "failed"

    image_server.add("/lifecycle/later.jpg", make_image("PNG", 5, 7), "image/png")
    code, accepted = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})
    assert code == 201, accepted
    retry_id = accepted["job_id"]
    assert accepted["total"] == 2 and accepted["retry_of"] == job_id
    assert status_of(stack, job_id)["retried_by"] == retry_id
    stack.drain()
    retried = status_of(stack, retry_id)
    assert retried["status"] == "completed" and retried["retry_of"] == job_id
    assert retried["progress"] == {"total": 2, "processed": 2, "succeeded": 2, "failed": 0}
    _, results = stack.api("GET", "/api/results", query={"jobid": retry_id})
    assert [(r["store_id"], r["perimeter"]) for r in results["results"]] == [("RP00001", 24), ("RP00002", 24)]

    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})
    assert code == 409 and retry_id in body["error"]
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": retry_id})
    assert code == 409 and "no failed images" in body["error"]
    assert stack.api("POST", "/api/jobs/retry", query={"jobid": "nope"})[0] == 400


def test_a_callback_url_without_a_signing_secret_is_refused_and_says_why(stack, image):
    # The `stack` fixture has no CALLBACK_SIGNING_SECRET_ARN (callbacks off, as without a key): such callbacks
    # would never be sent, so the job is refused instead of accepted with a promise it cannot keep.
    body = {"count": 1, "visits": [visit([image])], "callback_url": "https://hooks.example.com/done"}
    code, error = stack.api("POST", "/api/submit", body=body)
    assert code == 400
    assert error["error"].startswith("callback_url: callbacks are disabled")
    assert "CALLBACK_SIGNING_SECRET" in error["error"]
    assert stack.queue_depth() == 0 and not stack.items()  # nothing written or enqueued
    code, _ = stack.api("POST", "/api/submit", body={k: v for k, v in body.items() if k != "callback_url"})
    assert code == 201
