"""The local stack's SQS: semantics the event source mapping and the tests rely on."""

from __future__ import annotations

import boto3
import pytest

from local_stack.aws import AwsEndpoint
from local_stack.sqs import Queue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


def test_visibility_timeout_and_delete(clock):
    q = Queue("q", "http://x/q", {"VisibilityTimeout": "30"}, clock=clock)
    q.send("a")
    [m] = q.receive(10)
    first_receipt = m.receipt
    assert q.receive(10) == []  # in flight
    clock.now += 31
    [again] = q.receive(10)
    assert again.message_id == m.message_id and again.receive_count == 2
    assert not q.delete(first_receipt)  # stale receipt: the message was received again
    assert q.delete(again.receipt)
    clock.now += 100
    assert q.receive(10) == [] and q.counts() == (0, 0)


def test_redrive_to_dead_letter_queue_after_max_receives(clock):
    dlq = Queue("dlq", "http://x/dlq", {}, clock=clock)
    q = Queue("q", "http://x/q", {"VisibilityTimeout": "10"}, clock=clock)
    q.configure_redrive(dlq, 3)
    q.send("poison")
    for _ in range(3):
        assert len(q.receive(1)) == 1
        clock.now += 11
    assert q.receive(1) == []
    [dead] = dlq.receive(1)
    assert dead.body == "poison"


def test_fair_groups_interleave_a_small_job_with_a_big_one(clock):
    q = Queue("q", "http://x/q", {}, clock=clock)
    for i in range(1000):
        q.send(f"big-{i}", group="big")
    for i in range(5):
        q.send(f"small-{i}", group="small")
    first = [m.body for m in q.receive(10)]
    assert sum(b.startswith("small") for b in first) == 5  # not stuck behind 1,000 messages


def test_change_visibility_to_zero_makes_it_visible(clock):
    q = Queue("q", "http://x/q", {}, clock=clock)
    q.send("a")
    [m] = q.receive(1)
    q.change_visibility(m.receipt, 0)
    assert [x.body for x in q.receive(1)] == ["a"]


def test_boto3_speaks_to_it_over_http():
    endpoint = AwsEndpoint().start()
    try:
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint.sqs_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",  # noqa: S106
        )
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName="main",
            Attributes={
                "VisibilityTimeout": "60",
                "RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 5}}',
            },
        )["QueueUrl"]
        sent = sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": "g"} for i in range(10)]
        )
        assert len(sent["Successful"]) == 10 and not sent.get("Failed")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])["Messages"]
        assert sorted(m["Body"] for m in got) == sorted(f"m{i}" for i in range(10))
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == "1"
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in got]
        )
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["VisibilityTimeout"] == "60"
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            sqs.get_queue_url(QueueName="missing")
    finally:
        endpoint.stop()
