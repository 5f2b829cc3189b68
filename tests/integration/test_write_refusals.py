"""When DynamoDB refuses our writes (throttling, transaction conflicts): retried inside the call; past
the deadline the images come back in seconds, and on their last delivery they travel to the
dead-letter queue with their measured results. A good image is never recorded failed for our own
refusals, and nothing is counted twice."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from harness import LambdaContext, make_image, sqs_event
from reliability import record

from local_stack.dynamodb_limits import DynamoDBLimits, LimitsConfig
from local_stack.dynamodb_limits_adapters import InProcessLimits
from retail_pulse import handler_kit


@pytest.fixture
def png(image_server):
    return image_server.add("/refusals/a.png", make_image("PNG", 40, 30), "image/png")


@pytest.fixture
def no_backoff(monkeypatch):
    monkeypatch.setattr("retail_pulse.adapters.dynamodb.table.time.sleep", lambda _s: None)


def throttle(client, operation: str, times: int | None = None):
    """Make `operation` answer ProvisionedThroughputExceededException (`times` times, or always)."""
    original = getattr(client, operation)
    calls = {"n": 0}

    def refused(**kwargs):
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, operation
            )
        return original(**kwargs)

    return refused, calls


def visibility_of(stack, message_ids: set[str]) -> dict[str, bool]:
    """Which of these messages the queue hands out now (visible)."""
    seen = {m["MessageId"] for m in stack.receive(visibility=0)}
    return {m: m in seen for m in message_ids}


def test_throttled_result_writes_are_retried_in_the_call(stack, png, monkeypatch, no_backoff):
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [png, png], "visit_time": "2024-03-15T10:00:00Z"}])
    jobs = handler_kit.jobs()
    refused, calls = throttle(jobs.client, "put_item", times=3)
    monkeypatch.setattr(jobs.client, "put_item", refused)
    assert stack.invoke_process(stack.receive()) == set()
    assert calls["n"] == 5  # 2 results, 3 refusals retried
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed" and job["progress"]["succeeded"] == 2
    record("DynamoDB throttling on result writes: retried in the invocation", cases=3)


def test_writes_refused_past_the_deadline_come_back_in_seconds_and_count_once(stack, png, monkeypatch, no_backoff):
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [png, png], "visit_time": "2024-03-15T10:00:00Z"}])
    messages = stack.receive()
    jobs = handler_kit.jobs()
    refused, _ = throttle(jobs.client, "put_item")
    changed = []
    monkeypatch.setattr(jobs.client, "put_item", refused)
    redelivery = handler_kit.redelivery()
    original_change = redelivery.client.change_message_visibility_batch

    def change(**kwargs):
        changed.extend(e["VisibilityTimeout"] for e in kwargs["Entries"])
        return original_change(**kwargs)

    monkeypatch.setattr(redelivery.client, "change_message_visibility_batch", change)
    assert stack.invoke_process(messages) == {m["MessageId"] for m in messages}
    assert len(changed) == 2 and all(2 <= delay <= 60 for delay in changed)  # seconds, not the 360 s timeout
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["progress"]["processed"] == 0 and stack.results(job_id) == []
    monkeypatch.undo()
    assert stack.invoke_process(messages) == set()  # DynamoDB is back: the redelivery writes them
    assert stack.invoke_process(messages) == set()  # and once more (SQS at-least-once): nothing moves
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["progress"] == {"total": 2, "processed": 2, "succeeded": 2, "failed": 0}
    assert job["status"] == "completed"
    record("DynamoDB refusing result writes past the deadline: redelivered in seconds, counted once", cases=2)


def test_on_the_last_delivery_a_measured_result_travels_to_the_dead_letters_and_is_recorded_as_measured(
    stack, png, monkeypatch, no_backoff
):
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [png], "visit_time": "2024-03-15T10:00:00Z"}])
    [message] = stack.receive()
    message["Attributes"] = {**message.get("Attributes", {}), "ApproximateReceiveCount": "5"}  # maxReceiveCount
    jobs = handler_kit.jobs()
    refused, _ = throttle(jobs.client, "put_item")
    with monkeypatch.context() as patch:
        patch.setattr(jobs.client, "put_item", refused)
        assert stack.invoke_process([message]) == set()  # handed over: the main queue lets it go
    [letter] = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(letter["Body"])
    assert body["result"]["status"] == "succeeded" and body["result"]["perimeter"] == 2 * (40 + 30)
    assert "could not be written" in body["unrecorded_reason"]
    response = stack.dead_letter.lambda_handler(sqs_event([letter], stack.dlq_arn), LambdaContext())
    assert response["batchItemFailures"] == []
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed" and job["progress"]["succeeded"] == 1  # never recorded failed
    [result] = stack.results(job_id)
    assert (result["status"], result["perimeter"]) == ("succeeded", 140)
    record("Result refused on every delivery: recorded as measured by the dead-letter consumer", cases=1)


def test_the_write_path_holds_under_the_aws_limits_model(stack, image_server, monkeypatch):
    """The real DynamoDB limits model in front of moto, with tight budgets: every image ends once."""
    limits = DynamoDBLimits(LimitsConfig(partition_write_units=8, burst_s=0.5, commit_window_s=0.05))
    adapter = InProcessLimits(limits)
    adapter.attach(handler_kit.jobs().client)
    try:
        urls = [image_server.add(f"/refusals/{i}.png", make_image("PNG", 10 + i, 10), "image/png") for i in range(30)]
        visits = [
            {
                "store_id": f"RP0000{1 + v}",
                "image_url": urls[v * 10 : v * 10 + 10],
                "visit_time": "2024-03-15T10:00:00Z",
            }
            for v in range(3)
        ]
        job_id = stack.submit_job(visits)
        for _ in range(20):  # redeliveries come back at once here (the test's queue has no delay)
            stack.drain()
            _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
            if job["status"] != "ongoing":
                break
    finally:
        adapter.detach(handler_kit.jobs().client)
    counters = limits.snapshot()["counters"]
    assert counters["throttled_plain_operations"] > 0  # the model did refuse writes
    assert job["progress"] == {"total": 30, "processed": 30, "succeeded": 30, "failed": 0}, (job, counters)
    assert len(stack.results(job_id)) == 30
    record("AWS limits model (tight partition budget) on the write path: every image once", cases=30)


def test_a_throttled_read_of_the_jobs_does_not_send_the_batch_back(stack, png, monkeypatch, no_backoff):
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [png], "visit_time": "2024-03-15T10:00:00Z"}])
    jobs = handler_kit.jobs()
    refused, _ = throttle(jobs.client, "batch_get_item")
    monkeypatch.setattr(jobs.client, "batch_get_item", refused)
    assert stack.invoke_process(stack.receive()) == set()  # processed all the same
    monkeypatch.undo()
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed"
    record("DynamoDB throttling the batch's read of its jobs: processed anyway", cases=1)


def test_an_api_request_dynamodb_keeps_refusing_answers_503_json_with_retry_after(stack, png, monkeypatch, no_backoff):
    visit = {"store_id": "RP00001", "image_url": [png], "visit_time": "2024-03-15T10:00:00Z"}
    job_id = stack.submit_job([visit])
    jobs = handler_kit.jobs()
    for operation in ("get_item", "put_item", "batch_write_item"):
        refused, _ = throttle(jobs.client, operation)
        monkeypatch.setattr(jobs.client, operation, refused)
    stack.pump_streams()
    answers = {
        "status": stack.raw_api("GET", "/api/status", query={"jobid": job_id}),
        "submit": stack.raw_api("POST", "/api/submit", body={"count": 1, "visits": [visit]}),
    }
    for name, response in answers.items():
        assert response["statusCode"] == 503, (name, response)
        assert response["multiValueHeaders"]["Retry-After"] == ["2"], name
        assert "try again" in json.loads(response["body"])["error"], name
    monkeypatch.undo()
    status, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert status == 200 and job["status"] == "ongoing"  # the refused requests changed nothing
    record("DynamoDB refusing an API request past its budget: 503 JSON with Retry-After, not a 502", cases=2)


def test_keys_dynamodb_keeps_leaving_unprocessed_are_a_refusal_the_batch_survives(stack, png, monkeypatch, no_backoff):
    # A throttled BatchGetItem may answer 200 with every key in UnprocessedKeys: asked again with
    # backoff, then StorageRefused (not a RuntimeError), which the batch's read of its jobs survives.
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [png], "visit_time": "2024-03-15T10:00:00Z"}])
    jobs = handler_kit.jobs()
    calls = {"n": 0}

    def unprocessed(**kwargs):
        calls["n"] += 1
        return {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]}

    monkeypatch.setattr(jobs.client, "batch_get_item", unprocessed)
    assert stack.invoke_process(stack.receive()) == set()  # processed all the same
    assert calls["n"] == jobs.policy.max_attempts  # the first ask and one per pause of the policy
    monkeypatch.undo()
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed"
    record("DynamoDB leaving the batch's job keys unprocessed: asked again, then processed anyway", cases=1)
