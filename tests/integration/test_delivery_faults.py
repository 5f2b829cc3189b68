"""Delivery faults end exactly once: Idempotency-Key on submit, the dead-letter consumer, the stall
sweeper. Real handlers, real API Gateway / SQS event shapes, moto, images over local HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from harness import LambdaContext, make_image, sqs_event
from reliability import record

from devkit.template import Stack
from retail_pulse import handler_kit
from retail_pulse.logic.notify import Notifier
from retail_pulse.logic.unfinished import sweep_stalled_jobs


@pytest.fixture
def png(image_server):
    return image_server.add("/faults/a.png", make_image("PNG", 40, 30), "image/png")


def visits(url: str, images: int, store: str = "RP00001") -> list[dict]:
    return [{"store_id": store, "image_url": [url] * images, "visit_time": "2024-03-15T10:00:00Z"}]


def status(stack, job_id: str) -> dict:
    code, body = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert code == 200
    return body


def submit_with_key(stack, body: dict, key: str, header: str = "Idempotency-Key"):
    return stack.api("POST", "/api/submit", body=body, headers={header: key})


def test_idempotency_key_replays_the_job_and_enqueues_nothing_new(stack, png):
    body = {"count": 1, "visits": visits(png, 3)}
    code, first = submit_with_key(stack, body, "order-42")
    assert code == 201 and stack.queue_depth() == 3
    code, again = submit_with_key(stack, body, "order-42", header="idempotency-key")  # header names are case-free
    assert code == 201 and again["job_id"] == first["job_id"]
    assert stack.queue_depth() == 3
    items_before = len(stack.items())
    code, conflict = submit_with_key(stack, {"count": 1, "visits": visits(png, 4)}, "order-42")
    assert code == 409 and "Idempotency-Key" in conflict["error"]
    assert stack.queue_depth() == 3 and len(stack.items()) == items_before
    _, other = stack.api("POST", "/api/submit", body=body)  # no key: a new job
    assert other["job_id"] != first["job_id"]
    code, _ = stack.api(
        "POST", "/api/submit", body={"count": 2, "visits": visits(png, 1)}, headers={"Idempotency-Key": "k2"}
    )
    assert code == 400  # a rejected request is not remembered under its key...
    code, _ = submit_with_key(stack, body, "k2")
    assert code == 201  # ...so the corrected request with the same key goes through
    record("Submit retried with the same Idempotency-Key (and a different body: 409)", cases=4)


def receive_all(stack, expected: int) -> list[dict]:
    messages = []
    while len(messages) < expected:
        batch = stack.receive()
        assert batch, "queue ran dry"
        messages += batch
    return messages


def dead_letter(stack, message: dict) -> set[str]:
    response = stack.dead_letter.lambda_handler(sqs_event([message], stack.dlq_arn), LambdaContext())
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_dead_lettered_image_ends_failed_once_and_the_job_finishes(stack, png):
    job_id = stack.submit_job(visits(png, 3, store="RP00002"))
    messages = receive_all(stack, 3)
    assert stack.invoke_process(messages[:2]) == set()
    assert status(stack, job_id)["status"] == "ongoing"
    assert dead_letter(stack, messages[2]) == set()
    job = status(stack, job_id)
    assert job["status"] == "failed"
    assert job["progress"] == {"total": 3, "processed": 3, "succeeded": 2, "failed": 1}
    assert "dead-letter" in job["error"][0]["error"]
    # The same image again, from the DLQ and from the main queue: no-ops on a finished job.
    assert dead_letter(stack, messages[2]) == set()
    assert stack.invoke_process([messages[2]]) == set()
    assert status(stack, job_id) == job
    record("Message dead-lettered after 5 receives (then redelivered twice)", cases=3)


def test_each_image_ends_once_whichever_path_ends_it_first(stack, png):
    job_id = stack.submit_job(visits(png, 4, store="RP00003"))
    messages = receive_all(stack, 4)
    # Image 0: processed, then dead-lettered; image 1: dead-lettered, then processed.
    assert stack.invoke_process([messages[0]]) == set()
    assert dead_letter(stack, messages[0]) == set()
    assert dead_letter(stack, messages[1]) == set()
    assert stack.invoke_process([messages[1]]) == set()
    jobs, specs = handler_kit.jobs(), handler_kit.specs()
    later = datetime.now(UTC) + timedelta(seconds=5000)
    swept = sweep_stalled_jobs(jobs=jobs, specs=specs, now=later, stall_after_s=2100)  # ends images 2 and 3
    assert [s.images_failed for s in swept if s.job_id == job_id] == [2]
    for m in messages:  # every path again, after the job has finished
        assert stack.invoke_process([m]) == set() and dead_letter(stack, m) == set()
    assert sweep_stalled_jobs(jobs=jobs, specs=specs, now=later, stall_after_s=2100) == []
    job = status(stack, job_id)
    assert job["progress"] == {"total": 4, "processed": 4, "succeeded": 1, "failed": 3}
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id})
    assert [r["status"] for r in page["results"]] == ["succeeded", "failed", "failed", "failed"]
    # Dead-lettered and stalled images may pass on another try: a retry by class takes them.
    assert [r["error_class"] for r in page["results"]] == [None, "transient", "transient", "transient"]
    record("Same image ended by processing, dead-letter consumer and stall sweeper", cases=12)


def test_stall_sweeper_finishes_a_job_whose_messages_were_lost(stack, png):
    job_id = stack.submit_job(visits(png, 5, store="RP00004"))
    messages = receive_all(stack, 5)
    assert stack.invoke_process(messages[:2]) == set()
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # the other three messages are gone for good
    # The scheduled handler leaves a job with recent progress alone.
    assert stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext()) == {"swept": []}
    jobs, specs = handler_kit.jobs(), handler_kit.specs()
    swept = sweep_stalled_jobs(
        jobs=jobs, specs=specs, now=datetime.now(UTC) + timedelta(seconds=2200), stall_after_s=2100
    )
    assert [(s.job_id, s.images_failed) for s in swept] == [(job_id, 3)]
    job = status(stack, job_id)
    assert job["status"] == "failed" and job["finished_at"]
    assert job["progress"] == {"total": 5, "processed": 5, "succeeded": 2, "failed": 3}
    assert "stalled" in job["error"][0]["error"]
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id})
    assert len(page["results"]) == 5
    assert [r["error_class"] for r in page["results"][2:]] == ["transient"] * 3
    record("Messages lost (queue purged): stall sweeper fails the rest", cases=1)


def test_stall_window_is_longer_than_the_queue_retry_window():
    template = Stack()
    queue = template.resources["ImageQueue"]["Properties"]
    retry_window = queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]
    sweeper = template.functions(resolve_environment=False)["StallSweeperFunction"]
    assert int(sweeper.environment["STALL_AFTER_S"]) > retry_window
    assert sweeper.schedules == ["rate(5 minutes)"]


def test_jobs_ended_by_the_dlq_or_the_sweeper_send_one_notice(lifecycle, png):
    stack = lifecycle
    by_dlq = stack.submit_job(visits(png, 1, store="RP00005"))
    [message] = receive_all(stack, 1)
    for _ in range(2):  # the dead letter delivered twice: one notice
        assert dead_letter(stack, message) == set()
    by_sweep = stack.submit_job(visits(png, 2, store="RP00006"))
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    # The job last moved an hour ago (beyond STALL_AFTER_S): the scheduled handler sweeps it, once.
    boto3.client("dynamodb").update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{by_sweep}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET progressed_at = :then",
        ExpressionAttributeValues={":then": {"S": "2020-01-01T00:00:00.000Z"}},
    )
    assert stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext()) == {"swept": [by_sweep]}
    stack.pump_streams()  # the stream consumer counts the swept images and ends the job
    assert stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext()) == {"swept": []}
    events = [(e["job_id"], e["status"]) for e in stack.events()]
    assert sorted(events) == sorted([(by_dlq, "failed"), (by_sweep, "failed")])
    assert status(stack, by_sweep)["progress"] == {"total": 2, "processed": 2, "succeeded": 0, "failed": 2}
    record("Jobs ended by the DLQ consumer (twice) and the sweeper (twice): one notice each", cases=2)


def test_jobs_that_end_at_submit_send_one_notice(lifecycle, png, monkeypatch):
    stack = lifecycle
    unknown = stack.submit_job(visits(png, 2, store="NOT-A-STORE"))  # ends as it is created
    queue = handler_kit.queue()

    def unavailable(**_kwargs):
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")

    monkeypatch.setattr(queue.client, "send_message_batch", unavailable)
    code, body = stack.api("POST", "/api/submit", body={"count": 1, "visits": visits(png, 1)})
    assert code == 503 and body["job_id"]
    events = sorted((e["job_id"], e["status"]) for e in stack.events())
    assert events == sorted([(unknown, "failed"), (body["job_id"], "failed")])
    failed = status(stack, body["job_id"])
    assert failed["reason"].startswith("enqueueing images failed")
    assert failed["progress"] == {"total": 1, "processed": 1, "succeeded": 0, "failed": 1}
    record("Jobs ending at submit (unknown stores, SQS down): one notice each", cases=2)


def test_two_copies_of_one_image_in_a_dlq_batch_end_it_once(stack, png):
    job_id = stack.submit_job(visits(png, 1, store="RP00007"))
    [message] = receive_all(stack, 1)
    copy = dict(message, MessageId="a-duplicate-send")
    response = stack.dead_letter.lambda_handler(sqs_event([message, copy], stack.dlq_arn), LambdaContext())
    assert response["batchItemFailures"] == []
    assert status(stack, job_id)["progress"] == {"total": 1, "processed": 1, "succeeded": 0, "failed": 1}


def test_a_job_that_cannot_be_swept_does_not_hold_up_the_others(stack, png, monkeypatch):
    first = stack.submit_job(visits(png, 1, store="RP00008"))
    second = stack.submit_job(visits(png, 1, store="RP00009"))
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    jobs, specs = handler_kit.jobs(), handler_kit.specs()
    real_load = specs.load

    def broken_for_first(job_id):
        if job_id == first:
            raise RuntimeError("S3 is having a bad day")
        return real_load(job_id)

    monkeypatch.setattr(specs, "load", broken_for_first)
    errors = []
    swept = sweep_stalled_jobs(
        jobs=jobs,
        specs=specs,
        now=datetime.now(UTC) + timedelta(seconds=2200),
        stall_after_s=2100,
        on_error=lambda job_id, exc: errors.append(job_id),
    )
    assert [s.job_id for s in swept] == [second] and errors == [first]
    assert status(stack, first)["status"] == "ongoing"  # left for the next run
    assert status(stack, second)["status"] == "failed"


def test_a_notice_that_could_not_be_published_when_the_job_ended_is_sent_by_the_sweeper_once(
    lifecycle, png, monkeypatch
):
    stack = lifecycle
    job_id = stack.submit_job(visits(png, 1, store="RP00010"))
    [message] = receive_all(stack, 1)
    working = handler_kit.notifier()

    class DownTopic:
        def publish(self, message: str, subject: str, client_id: str | None = None) -> None:
            raise ConnectionError("SNS unreachable")

    assert dead_letter(stack, message) == set()  # the image is recorded
    with monkeypatch.context() as patch:
        patch.setattr(handler_kit, "notifier", lambda: Notifier(DownTopic(), working.callbacks, lambda: "s"))
        stack.pump_streams()  # the stream consumer ends the job; its notice cannot go out and stays owed
    assert status(stack, job_id)["status"] == "failed" and stack.events() == []
    # The ending call's lease on the notice runs out (here: its job ended an hour ago).
    boto3.client("dynamodb").update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET finished_at = :then, notice_lease = :then",
        ExpressionAttributeValues={":then": {"S": "2020-01-01T00:00:00.000Z"}},
    )
    for _ in range(2):
        stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext())
    assert [(e["job_id"], e["status"]) for e in stack.events()] == [(job_id, "failed")]
    record("Completion notice publish failed when the job ended: sent later by the sweeper, once", cases=1)
