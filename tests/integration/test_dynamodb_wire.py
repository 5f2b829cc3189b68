"""Reads whose items are taken from the answer's JSON (adapters/dynamodb/wire.py) parse to exactly
what botocore's own parser gives, for every attribute type; an answer with a binary value is left
to botocore; the rest of the answer (count, the key to go on from, capacity) is still parsed."""

from __future__ import annotations

import boto3
import pytest
from harness import create_keyed_table
from moto import mock_aws

from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.adapters.dynamodb.wire import ITEM_FIELDS, take_items_from_json

TABLE = "wire"
TEXT_ITEM = {
    "s": {"S": 'quotes " and \\"B\\": in text, \u00e9 \u6f22'},
    "n": {"N": "12.50"},
    "big": {"N": "123456789012345678901234567890"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "m": {"M": {"inner": {"L": [{"S": "v"}, {"N": "3"}, {"NULL": True}, {"BOOL": False}]}}},
    "t": {"BOOL": True},
    "z": {"NULL": True},
}
BINARY_ITEM = {**TEXT_ITEM, "b": {"B": b"\x00\x01binary\xff"}, "bs": {"BS": [b"x", b"\x00y"]}}


def reads(client) -> list:
    key = {"pk": {"S": "P"}, "sk": {"S": "0003"}}
    capacity = {"ReturnConsumedCapacity": "TOTAL"}
    answers = [
        client.get_item(TableName=TABLE, Key=key, **capacity),
        client.get_item(TableName=TABLE, Key={"pk": {"S": "none"}, "sk": {"S": "none"}}),
        client.get_item(TableName=TABLE, Key={"pk": {"S": "BIN"}, "sk": {"S": "0"}}),
        client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "P"}},
            Limit=4,
            **capacity,
        ),
        client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "P"}},
            Select="COUNT",
        ),
        client.scan(TableName=TABLE, FilterExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "P"}}),
        client.batch_get_item(RequestItems={TABLE: {"Keys": [key, {"pk": {"S": "BIN"}, "sk": {"S": "0"}}]}}),
        client.batch_get_item(RequestItems={TABLE: {"Keys": [key, {"pk": {"S": "P"}, "sk": {"S": "0004"}}]}}),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


@pytest.fixture
def table(aws_env):
    with mock_aws():
        create_keyed_table(TABLE)
        client = boto3.client("dynamodb")
        for i in range(10):
            client.put_item(TableName=TABLE, Item={"pk": {"S": "P"}, "sk": {"S": f"{i:04d}"}, **TEXT_ITEM})
        client.put_item(TableName=TABLE, Item={"pk": {"S": "BIN"}, "sk": {"S": "0"}, **BINARY_ITEM})
        yield


def test_items_taken_from_the_json_equal_what_botocore_parses(table) -> None:
    parsed_by_botocore = reads(boto3.client("dynamodb"))
    shortcut = boto3.client("dynamodb")
    take_items_from_json(shortcut)
    left_to_botocore = []  # what botocore's parser still got, after the shortcut (registered before)
    for operation in ITEM_FIELDS:
        shortcut.meta.events.register(
            f"before-parse.dynamodb.{operation}",
            lambda response_dict, **_: left_to_botocore.append(response_dict["body"]),
        )

    assert reads(shortcut) == parsed_by_botocore
    assert parsed_by_botocore[2]["Item"]["b"] == {"B": b"\x00\x01binary\xff"}  # binary: botocore's bytes
    assert parsed_by_botocore[3]["LastEvaluatedKey"] and parsed_by_botocore[3]["Count"] == 4
    with_items = [i for i, body in enumerate(left_to_botocore) if b'"Item' in body or b'"Responses"' in body]
    assert with_items == [2, 6]  # only the answers holding a binary value


def test_a_table_access_reads_through_the_shortcut_once(table) -> None:
    client = boto3.client("dynamodb")
    TableAccess(TABLE, client)
    TableAccess(TABLE, client)  # a second adapter on the same client registers nothing more
    bodies = []
    client.meta.events.register(
        "before-parse.dynamodb.Query", lambda response_dict, **_: bodies.append(response_dict["body"])
    )

    items = list(
        TableAccess(TABLE, client).query_all(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "P"}}
        )
    )

    assert [i["sk"] for i in items] == [f"{i:04d}" for i in range(10)]
    assert items[0]["m"] == {"inner": ["v", 3, None, False]} and items[0]["n"] == 12.5
    assert b"Items" not in bodies[-1]  # botocore was left the answer without its items
