"""The local stack's AWS endpoint: moto with a cheaper transaction rollback must still be all-or-nothing."""

from __future__ import annotations

import boto3
import pytest
from harness import create_keyed_table

from local_stack.aws import AwsEndpoint


@pytest.fixture(scope="module")
def dynamodb():
    endpoint = AwsEndpoint().start()
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint.moto_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",  # noqa: S106 - the local endpoint takes any
    )
    create_keyed_table("t", client=client)
    yield client
    endpoint.stop()


def put(pk, sk, condition=True):
    op = {"TableName": "t", "Item": {"pk": {"S": pk}, "sk": {"S": sk}}}
    if condition:
        op["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": op}


def counter_add(n):
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "job"}, "sk": {"S": "JOB"}},
            "UpdateExpression": "ADD n :n",
            "ExpressionAttributeValues": {":n": {"N": str(n)}},
        }
    }


def counter(dynamodb) -> int:
    item = dynamodb.get_item(TableName="t", Key={"pk": {"S": "job"}, "sk": {"S": "JOB"}}).get("Item")
    return int(item["n"]["N"]) if item else 0


def test_cancelled_transaction_leaves_nothing_behind(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("job", "IMG#1"), counter_add(1)])
    assert counter(dynamodb) == 1
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as err:
        # IMG#2 and the counter would succeed, IMG#1 exists: none of it may stay.
        dynamodb.transact_write_items(TransactItems=[put("job", "IMG#2"), counter_add(5), put("job", "IMG#1")])
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert counter(dynamodb) == 1
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"pk": {"S": "job"}, "sk": {"S": "IMG#2"}})
    dynamodb.transact_write_items(TransactItems=[put("job", "IMG#2"), counter_add(1)])
    assert counter(dynamodb) == 2
