"""StreamPump (devkit/streams.py) against moto in-process: Lambda's DynamoDB event source mapping."""

from __future__ import annotations

import base64
import threading
import time

import boto3
import pytest
from stream_helpers import TABLE, Recorder, create_table, image_number, make_pump, put_images

from devkit.streams import StreamPump, streams_client


@pytest.fixture
def arn(aws_env):
    from moto import mock_aws

    with mock_aws():
        yield create_table()


def test_records_arrive_in_order_in_lambdas_shape(arn):
    ddb = boto3.client("dynamodb")
    nested = {"M": {"blob": {"B": b"\x01"}, "list": {"L": [{"N": "1.5"}, {"NULL": True}, {"BS": [b"\x02"]}]}}}
    item = {"pk": {"S": "JOB#1"}, "sk": {"S": "IMG#00000"}, "b": {"B": b"\x00\xff"}, "m": nested}
    ddb.put_item(TableName=TABLE, Item=item)
    put_images(1, 29)
    recorder = Recorder()
    pump = make_pump(arn, recorder, batch_size=100)
    assert pump.poll_once() == 30
    assert recorder.numbers() == list(range(30))
    [batch] = recorder.batches
    first = batch[0]
    assert first["eventName"] == "INSERT" and first["eventSource"] == "aws:dynamodb"
    assert first["eventSourceARN"] == arn and first["awsRegion"] == "us-east-1" and first["eventID"]
    data = first["dynamodb"]
    assert isinstance(data["ApproximateCreationDateTime"], int)
    assert abs(data["ApproximateCreationDateTime"] - time.time()) < 60
    assert data["Keys"] == {"pk": {"S": "JOB#1"}, "sk": {"S": "IMG#00000"}}
    assert data["NewImage"]["b"] == {"B": base64.b64encode(b"\x00\xff").decode()}  # base64, as in Lambda's JSON
    assert data["NewImage"]["m"] == {
        "M": {"blob": {"B": "AQ=="}, "list": {"L": [{"N": "1.5"}, {"NULL": True}, {"BS": ["Ag=="]}]}}
    }
    assert data["StreamViewType"] == "NEW_IMAGE" and data["SizeBytes"] > 0
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in batch]
    assert sequences == sorted(sequences) and len(set(sequences)) == 30
    assert pump.poll_once() == 0 and pump.invocations == 1


def test_batch_size_is_honoured(arn):
    put_images(0, 25)
    recorder = Recorder()
    assert make_pump(arn, recorder, batch_size=10).poll_once() == 25
    assert [len(b) for b in recorder.batches] == [10, 10, 5]
    assert recorder.numbers() == list(range(25))


def test_batching_window_waits_for_a_full_batch(arn):
    recorder = Recorder()
    pump = make_pump(arn, recorder, batch_size=10, batching_window_s=0.3)
    put_images(0, 3)
    assert pump.poll_once() == 0  # not full: wait up to the window
    put_images(3, 2)
    assert pump.poll_once() == 0
    time.sleep(0.35)
    assert pump.poll_once() == 5
    put_images(5, 12)
    assert pump.poll_once() == 10  # a full batch goes at once; the other 2 wait again
    assert pump.poll_once(flush=True) == 2  # flush ignores the window (the tests' helper uses it)
    assert [len(b) for b in recorder.batches] == [5, 10, 2]


def test_a_failing_batch_is_retried_from_the_same_position(arn):
    put_images(0, 35)
    # The 2nd invocation fails twice, the 4th once: nothing is skipped or delivered out of order.
    failures = {1, 2, 5}
    recorder = Recorder(fail=lambda call, records: "error" if call in failures else None)
    pump = make_pump(arn, recorder, batch_size=10)
    delivered = [pump.poll_once() for _ in range(5)]
    assert sum(delivered) == 35 and delivered[0] == 10  # the first pass stops at the failing batch
    assert recorder.numbers() == list(range(35))
    assert [image_number(b[0]) for b in recorder.batches] == [0, 10, 10, 10, 20, 30, 30]
    assert recorder.batches[1] == recorder.batches[2] == recorder.batches[3]  # the very same records
    assert (pump.invocations, pump.failed_invocations, pump.records_delivered) == (7, 3, 35)
    assert pump.last_error["errorMessage"] == "boom"


def test_run_backs_off_and_retries_in_the_background(arn):
    put_images(0, 20)
    recorder = Recorder(fail=lambda call, records: "error" if call < 3 else None)
    pump = make_pump(arn, recorder, batch_size=10, poll_interval_s=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=pump.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while pump.records_delivered < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert recorder.numbers() == list(range(20))
    assert time.monotonic() - started >= 0.05 + 0.1  # backoffs 0.05 s, 0.1 s, 0.2 s between the attempts
    assert not thread.is_alive()


def test_report_batch_item_failures_checkpoints_before_the_lowest_reported(arn):
    put_images(0, 10)
    sequence = {}

    def fail(call, records):
        sequence.update({image_number(r): r["dynamodb"]["SequenceNumber"] for r in records})
        if call == 0:
            return [sequence[6], sequence[3]]  # the lowest, 3, is the checkpoint
        return None

    recorder = Recorder(fail=fail)
    pump = make_pump(arn, recorder, batch_size=10, report_item_failures=True)
    assert pump.poll_once() == 3  # records 0-2 succeeded; the shard waits for its retry
    assert pump.poll_once() == 7
    assert [image_number(r) for r in recorder.batches[1]] == list(range(3, 10))
    assert pump.failed_invocations == 1 and pump.records_delivered == 10


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "12345"}]},  # not a record of the batch
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "x"}]},
        {"batchItemFailures": ["oops"]},
    ],
)
def test_an_invalid_failure_report_fails_the_whole_batch(arn, response):
    put_images(0, 4)
    calls = []

    def invoke(event):
        calls.append(event)
        return True, response if len(calls) == 1 else {"batchItemFailures": None}

    pump = StreamPump(streams_client(), arn, invoke, batch_size=10, report_item_failures=True)
    assert pump.poll_once() == 0
    assert pump.poll_once() == 4  # null list: a complete success
    assert calls[0] == calls[1]


def test_failure_reports_are_ignored_without_report_batch_item_failures(arn):
    put_images(0, 4)
    recorder = Recorder(fail=lambda call, records: [records[0]["dynamodb"]["SequenceNumber"]])
    assert make_pump(arn, recorder, batch_size=10).poll_once() == 4


def test_filters_skip_records_as_processed(arn):
    ddb = boto3.client("dynamodb")
    put_images(0, 3)
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})  # not a result
    ddb.update_item(  # a MODIFY of a result: filtered too
        TableName=TABLE,
        Key={"pk": {"S": "JOB#1"}, "sk": {"S": "IMG#00001"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "9"}},
    )
    put_images(3, 2)
    recorder = Recorder()
    image_inserts = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}
    pump = make_pump(arn, recorder, batch_size=100, filters=[image_inserts])
    assert pump.poll_once() == 5
    assert recorder.numbers() == [0, 1, 2, 3, 4]
    assert pump.records_filtered == 2
    ddb.put_item(TableName=TABLE, Item={"pk": {"S": "JOB#2"}, "sk": {"S": "JOB"}})
    assert pump.poll_once() == 0 and pump.invocations == 1  # only filtered records: no invocation


def test_invalid_filters_are_refused_when_the_mapping_is_made(arn):
    with pytest.raises(ValueError):
        make_pump(arn, Recorder(), filters=[{"eventName": [{"wildcard": "*"}]}])


def test_maximum_retry_attempts_discards_the_batch_and_moves_on(arn):
    put_images(0, 6)
    recorder = Recorder(fail=lambda call, records: "error" if image_number(records[0]) == 0 else None)
    pump = make_pump(arn, recorder, batch_size=3, max_retry_attempts=1)
    assert pump.poll_once() == 0  # first attempt
    assert pump.poll_once() == 3  # the retry fails too: batch 0-2 discarded, 3-5 delivered
    assert recorder.numbers() == [3, 4, 5] and pump.records_discarded == 3


def test_bisect_on_error_retries_the_first_half(arn):
    put_images(0, 8)
    recorder = Recorder(fail=lambda call, records: "error" if 1 in map(image_number, records) else None)
    pump = make_pump(arn, recorder, batch_size=8, bisect_on_error=True)
    for _ in range(4):
        pump.poll_once()
    assert [len(b) for b in recorder.batches[:4]] == [8, 4, 2, 1]  # 8 -> 4 -> 2 -> 1 (record 0 alone)
    assert recorder.numbers() == [0]  # then record 1 alone keeps failing, in order, nothing skipped


def test_latest_starts_at_the_mapping(arn):
    put_images(0, 3)
    recorder = Recorder()
    pump = make_pump(arn, recorder, starting_position="LATEST")
    pump.prime()
    put_images(3, 2)
    assert pump.poll_once() == 2 and recorder.numbers() == [3, 4]


def test_records_parsed_by_botocore_are_put_back_in_wire_format():
    from datetime import UTC, datetime

    from devkit.streams import lambda_record

    parsed = {
        "eventID": "1",
        "eventName": "MODIFY",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2024, 3, 15, 10, 0, 1, 900000, tzinfo=UTC),
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {"pk": {"S": "a"}, "b": {"B": b"\x01"}, "m": {"M": {"s": {"BS": [b"\x02"]}}}},
            "SequenceNumber": "7",
        },
    }
    record = lambda_record(parsed, "arn:aws:dynamodb:eu-west-1:1:table/t/stream/x")
    assert record.sequence == "7" and record.created == pytest.approx(1710496801.9)
    event_record = record.event_record
    assert event_record["dynamodb"]["ApproximateCreationDateTime"] == 1710496801  # rounded down
    assert event_record["dynamodb"]["NewImage"] == {
        "pk": {"S": "a"},
        "b": {"B": "AQ=="},
        "m": {"M": {"s": {"BS": ["Ag=="]}}},
    }
    assert event_record["awsRegion"] == "eu-west-1" and event_record["eventSource"] == "aws:dynamodb"
