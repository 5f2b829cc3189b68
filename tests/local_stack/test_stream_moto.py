"""moto's DynamoDB streams as local_stack/moto_patches.py leaves them: read records are dropped (memory
stays bounded), iterators expire instead of piling up, cancelled transactions leave no record."""

from __future__ import annotations

import gc
import time
import weakref

import boto3
import pytest
from botocore.exceptions import ClientError
from stream_helpers import TABLE, Recorder, create_table, image_number, make_pump, put_images

from devkit.streams import streams_client
from local_stack import moto_patches


@pytest.fixture
def arn(aws_env):
    from moto import mock_aws

    with mock_aws():
        yield create_table(view="NEW_AND_OLD_IMAGES")


def backend():
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"]


def shard():
    return backend().tables[TABLE].stream_shard


def test_read_records_are_dropped_and_freed(arn):
    recorder = Recorder()
    pump = make_pump(arn, recorder, batch_size=100)
    delivered = 0
    for rounds in range(4):
        put_images(rounds * 100, 100)
        assert len(shard().items) == 100
        oldest = weakref.ref(shard().items[0])
        delivered += pump.poll_once()
        assert len(shard().items) == 0  # the pump read past them all
        gc.collect()
        assert oldest() is None  # nothing else (moto's instance tracking) keeps them alive
    assert delivered == 400 and recorder.numbers() == list(range(400))
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for b in recorder.batches for r in b]
    assert sequences == list(range(sequences[0], sequences[0] + 400))  # numbering unchanged by the drops


def test_trim_horizon_is_the_oldest_record_kept_and_older_reads_are_refused(arn):
    client = streams_client()
    shard_id = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    put_images(0, 5)
    old = client.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = client.get_records(ShardIterator=old, Limit=2)
    assert [image_number(r) for r in records["Records"]] == [0, 1]
    client.get_records(ShardIterator=records["NextShardIterator"], Limit=1)  # reads from record 2: 0-1 dropped
    assert len(shard().items) == 3
    again = client.get_records(ShardIterator=records["NextShardIterator"], Limit=10)  # an iterator may be reused
    assert [image_number(r) for r in again["Records"]] == [2, 3, 4]
    with pytest.raises(ClientError) as error:
        client.get_records(ShardIterator=old, Limit=10)
    assert error.value.response["Error"]["Code"] == "TrimmedDataAccessException"
    fresh = client.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
    assert [image_number(r) for r in client.get_records(ShardIterator=fresh["ShardIterator"])["Records"]] == [2, 3, 4]


def test_idle_polls_do_not_pile_up_iterators_and_expired_ones_are_renewed(arn, monkeypatch):
    recorder = Recorder()
    pump = make_pump(arn, recorder)
    put_images(0, 2)
    for _ in range(50):
        pump.poll_once()
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    iterators = dynamodbstreams_backends["123456789012"]["us-east-1"].shard_iterators
    assert len(iterators) <= 3
    monkeypatch.setattr(moto_patches, "ITERATOR_TTL_S", 0.2)
    time.sleep(0.3)  # the pump's iterator is now older than its 15 minutes (0.2 s here)
    put_images(2, 2)
    assert pump.poll_once() == 2  # ExpiredIteratorException: a new iterator after the last record read
    assert recorder.numbers() == [0, 1, 2, 3]


def _transact(*items):
    boto3.client("dynamodb").transact_write_items(TransactItems=list(items))


def _key(sk):
    return {"pk": {"S": "JOB#1"}, "sk": {"S": sk}}


def test_a_cancelled_transaction_leaves_no_stream_record(arn):
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName=TABLE, Item={**_key("JOB"), "done": {"N": "0"}})
    ddb.put_item(TableName=TABLE, Item={**_key("IMG#00009"), "n": {"N": "9"}})
    recorder = Recorder()
    pump = make_pump(arn, recorder)
    assert pump.poll_once() == 2
    with pytest.raises(ClientError) as error:
        # moto applies the put, the update and the delete before it meets the failing check.
        _transact(
            {"Put": {"TableName": TABLE, "Item": {**_key("IMG#00001"), "n": {"N": "1"}}}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": _key("JOB"),
                    "UpdateExpression": "ADD done :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
            {"Delete": {"TableName": TABLE, "Key": _key("IMG#00009")}},
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": _key("IMG#00002"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        )
    assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert len(shard().items) == 0  # neither the writes nor their rollback left a record
    assert pump.poll_once() == 0
    items = {i["sk"]["S"]: i for i in ddb.scan(TableName=TABLE)["Items"]}
    assert set(items) == {"JOB", "IMG#00009"} and items["JOB"]["done"] == {"N": "0"}
    _transact(
        {"Put": {"TableName": TABLE, "Item": {**_key("IMG#00001"), "n": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": _key("IMG#00009")}},
    )
    assert pump.poll_once() == 2
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in recorder.batches[-1]] == [
        ("INSERT", "IMG#00001"),
        ("REMOVE", "IMG#00009"),
    ]
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for b in recorder.batches for r in b]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4


def test_item_size_limit_is_still_enforced(arn):
    ddb = boto3.client("dynamodb")
    with pytest.raises(ClientError) as error:
        ddb.put_item(TableName=TABLE, Item={**_key("IMG#1"), "a": {"S": "x" * 300_000}, "b": {"S": "y" * 200_000}})
    assert "Item size has exceeded the maximum allowed size" in error.value.response["Error"]["Message"]
    ddb.put_item(TableName=TABLE, Item={**_key("IMG#2"), "a": {"S": "x" * 300_000}})


def test_writes_inside_no_stream_records_leave_none(arn):
    with moto_patches.no_stream_records():
        put_images(0, 2)
    put_images(2, 1)
    assert [r.to_json()["dynamodb"]["Keys"]["sk"]["S"] for r in shard().items] == ["IMG#00002"]
