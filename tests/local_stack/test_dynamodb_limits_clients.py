"""The DynamoDB limits through real boto3 clients: in-process with `mock_aws` (botocore hooks) and
through a started local stack (the moto process's WSGI middleware). Both must give botocore the
responses AWS gives, so the SDK raises the same exception classes with the same fields."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config

from local_stack.dynamodb_limits import DynamoDBLimits, LimitsConfig
from local_stack.dynamodb_limits_adapters import InProcessLimits
from local_stack.runner import start_local_stack

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
TABLE = {
    "TableName": "limits",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "state", "AttributeType": "S"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "ByState",
            "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def key(pk: str, sk: str = "x") -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def add(pk: str, sk: str = "x") -> dict:
    return {
        "Update": {
            "TableName": "limits",
            "Key": key(pk, sk),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


@pytest.fixture
def in_process(aws_env):
    from moto import mock_aws

    with mock_aws():
        # A stopped clock: budgets do not refill while the test runs, whatever the machine's speed.
        limits = DynamoDBLimits(LimitsConfig(commit_window_s=5.0, partition_write_units=10), clock=lambda: 1000.0)
        adapter = InProcessLimits(limits)
        client = adapter.attach(boto3.client("dynamodb", config=NO_RETRIES))
        client.create_table(**TABLE)
        yield client, adapter.limits


def test_overlapping_transactions_conflict_with_awss_cancellation_reasons(in_process):
    client, limits = in_process
    client.transact_write_items(TransactItems=[add("job")])
    with pytest.raises(client.exceptions.TransactionCanceledException) as err:
        client.transact_write_items(TransactItems=[add("other"), add("job")])
    assert type(err.value).__name__ == "TransactionCanceledException"
    assert err.value.response["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
    ]
    assert err.value.response["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]"
    )
    with pytest.raises(client.exceptions.TransactionConflictException, match="Transaction is ongoing for the item"):
        client.put_item(TableName="limits", Item=key("job"))
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_get_items(TransactItems=[{"Get": {"TableName": "limits", "Key": key("job")}}])
    assert client.get_item(TableName="limits", Key=key("job"))["Item"]["n"] == {"N": "1"}  # plain reads pass
    assert "Item" not in client.get_item(TableName="limits", Key=key("other"))  # the cancelled one wrote nothing
    counters = limits.snapshot()["counters"]
    assert counters["transaction_conflicts"] == 2 and counters["plain_write_conflicts"] == 1


def test_a_hot_partition_throttles_plain_writes_transactions_and_batches(in_process):
    client, limits = in_process
    for i in range(10):  # 10 WCU/s per partition in this test
        client.put_item(TableName="limits", Item=key("hot", str(i)))
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as err:
        client.put_item(TableName="limits", Item=key("hot", "10"))
    assert err.value.response["ThrottlingReasons"] == [
        {
            "reason": "TableWriteKeyRangeThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/limits",
        }
    ]
    assert "DynamoDB is automatically scaling your table or index" in err.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.TransactionCanceledException) as err:
        client.transact_write_items(TransactItems=[add("cool"), add("hot", "t")])
    reasons = err.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ThrottlingError"]
    batch = {"limits": [{"PutRequest": {"Item": key(pk, "b")}} for pk in ("hot", "cool2")]}
    answer = client.batch_write_item(RequestItems=batch)
    assert answer["UnprocessedItems"] == {"limits": [{"PutRequest": {"Item": key("hot", "b")}}]}
    assert "Item" in client.get_item(TableName="limits", Key=key("cool2", "b"))
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.batch_write_item(RequestItems={"limits": [{"PutRequest": {"Item": key("hot", "c")}}]})
    counters = limits.snapshot()["counters"]
    assert counters["throttled_plain_operations"] == 2
    assert counters["throttled_transactions"] == 1
    assert counters["unprocessed_batch_items"] == 1


def test_an_exhausted_gsi_partition_throttles_the_base_write(in_process):
    client, limits = in_process
    for i in range(10):  # every job in state "ongoing": one index partition
        client.put_item(TableName="limits", Item={**key(f"job{i}"), "state": {"S": "ongoing"}})
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as err:
        client.put_item(TableName="limits", Item={**key("job10"), "state": {"S": "ongoing"}})
    assert err.value.response["ThrottlingReasons"] == [
        {
            "reason": "IndexWriteKeyRangeThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/limits/index/ByState",
        }
    ]
    assert "global secondary indexes" in err.value.response["Error"]["Message"]
    assert "Item" not in client.get_item(TableName="limits", Key=key("job10"))
    client.put_item(TableName="limits", Item=key("job10"))  # without an index entry it goes through
    snapshot = limits.snapshot()
    assert snapshot["counters"]["throttled_by_gsi"] == 1
    assert snapshot["consumed"]["limits"]["indexes"]["ByState"]["write_units"] == 10


def test_sizes_are_validated_and_consumption_is_counted_per_table_and_index(in_process):
    client, limits = in_process
    with pytest.raises(client.exceptions.ClientError, match="Item size has exceeded the maximum allowed size"):
        client.put_item(TableName="limits", Item={**key("big"), "blob": {"S": "x" * 400 * 1024}})
    with pytest.raises(client.exceptions.ClientError, match="multiple operations on one item"):
        client.transact_write_items(TransactItems=[add("a"), add("a")])
    client.put_item(TableName="limits", Item={**key("a"), "blob": {"S": "x" * 2000}})  # 2 WCU
    client.update_item(  # the larger of before (2 KB) and after (3 KB): 3 WCU
        TableName="limits",
        Key=key("a"),
        UpdateExpression="SET more = :m",
        ExpressionAttributeValues={":m": {"S": "y" * 1000}},
    )
    client.query(  # 3 KB read eventually consistent: 0.5 RCU
        TableName="limits", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
    )
    client.get_item(TableName="limits", Key=key("a"), ConsistentRead=True)  # 1 RCU
    snapshot = limits.snapshot()
    assert snapshot["counters"]["validation_refusals"] == 2
    assert snapshot["consumed"]["limits"]["write_units"] == 5
    assert snapshot["consumed"]["limits"]["read_units"] == 1.5


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    stack = start_local_stack(
        tmp_path_factory.mktemp("limits-stack"),
        "--warm",
        "0",
        "--aws-commit-window",
        "5",
        "--aws-partition-wcu",
        "10",
    )
    yield stack
    stack.stop()


def test_the_local_stack_refuses_like_aws(running_stack):
    client = boto3.client(
        "dynamodb",
        endpoint_url=running_stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
        config=NO_RETRIES,
    )
    client.create_table(**TABLE)
    running_stack.reset_limits()
    client.transact_write_items(TransactItems=[add("job")])
    with pytest.raises(client.exceptions.TransactionCanceledException) as err:
        client.transact_write_items(TransactItems=[add("job"), add("other")])
    assert err.value.response["CancellationReasons"] == [
        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
        {"Code": "None"},
    ]
    # 10 WCU/s per partition here: an item of 9 KB costs 9 of them, so a second one within the
    # ~0.8 s the bucket needs to refill is refused.
    blob = {"blob": {"S": "x" * 9 * 1000}}
    client.put_item(TableName="limits", Item={**key("hot", "1"), **blob})
    started = time.monotonic()
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException) as err:
        client.put_item(TableName="limits", Item={**key("hot", "2"), **blob})
    assert time.monotonic() - started < 0.5  # refused at once, as AWS does
    assert err.value.response["ThrottlingReasons"][0]["reason"] == "TableWriteKeyRangeThroughputExceeded"
    limits = running_stack.limits()
    assert limits["enabled"] is True
    assert limits["counters"]["transaction_conflicts"] == 1
    assert limits["counters"]["throttled_plain_operations"] == 1, limits
    assert limits["consumed"]["limits"]["write_units"] == 2 + 9
    assert limits["hottest_partitions"][0]["partition"] == '{"S":"hot"}'
    running_stack.reset_limits()
    assert not any(running_stack.limits()["counters"].values())


def test_query_and_scan_are_charged_for_what_they_read_before_the_filter(in_process):
    client, limits = in_process
    for i in range(3):  # 3 items of ~3 KB in one partition (3 WCU each, of the test's 10)
        client.put_item(TableName="limits", Item={**key("p", str(i)), "blob": {"S": "x" * 3000}})
    limits.reset()
    found = client.query(
        TableName="limits",
        KeyConditionExpression="pk = :p",
        FilterExpression="sk = :none",
        ExpressionAttributeValues={":p": {"S": "p"}, ":none": {"S": "nothing"}},
        ConsistentRead=True,
    )
    assert found["Count"] == 0 and found["ScannedCount"] == 3
    assert limits.snapshot()["consumed"]["limits"]["read_units"] == 3  # ~9 KB, strongly consistent
    client.scan(TableName="limits", Select="COUNT")  # the same ~9 KB, eventually consistent
    assert limits.snapshot()["consumed"]["limits"]["read_units"] == 3 + 1.5


def test_a_session_carries_the_limits_to_its_clients_and_other_services_pass(aws_env):
    from moto import mock_aws

    with mock_aws():
        session = boto3.Session()
        adapter = InProcessLimits()
        adapter.attach(session)
        client = session.client("dynamodb")
        client.create_table(**TABLE)
        client.put_item(TableName="limits", Item=key("a"))
        s3 = session.client("s3")
        s3.create_bucket(Bucket="limits-bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["limits-bucket"]
        assert adapter.limits.snapshot()["consumed"]["limits"]["write_units"] == 1
        adapter.detach(session)
        session.client("dynamodb").put_item(TableName="limits", Item=key("b"))  # moto alone again
        assert adapter.limits.snapshot()["consumed"]["limits"]["write_units"] == 1
