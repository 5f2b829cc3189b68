"""moto's DynamoDB as local_stack/moto_patches.py leaves it answers a client exactly as moto itself
does: responses written as JSON directly (not by moto's shape-driven serialiser), and queries that
read the queried partition (not the whole table, sorted). The same calls, run once each way, parse
to equal answers."""

from __future__ import annotations

import copy

import boto3
import pytest
from botocore.exceptions import ClientError
from stream_helpers import TABLE, create_table

from local_stack import moto_patches

ITEM = {
    "pk": {"S": "JOB#1"},
    "sk": {"S": "R#0001"},
    "s": {"S": "text with \u00e9 and \u6f22"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\x01binary\xff"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"x", b"\x00y"]},
    "m": {"M": {"inner": {"L": [{"S": "v"}, {"N": "3"}, {"NULL": True}, {"BOOL": False}]}}},
    "t": {"BOOL": True},
    "z": {"NULL": True},
}


def calls(client) -> list:
    """Every fast-path action, with the options that shape their answers; errors recorded as such."""
    create_table()  # keyed like JobsTable (pk, sk); its stream changes no answer
    key = {"pk": ITEM["pk"], "sk": ITEM["sk"]}
    total = {"ReturnConsumedCapacity": "TOTAL"}
    steps = [
        lambda: client.put_item(TableName=TABLE, Item=ITEM, **total),
        lambda: client.put_item(TableName=TABLE, Item=ITEM, ReturnValues="ALL_OLD", **total),
        lambda: client.put_item(TableName=TABLE, Item=ITEM, ConditionExpression="attribute_not_exists(pk)"),
        lambda: client.put_item(
            TableName=TABLE,
            Item=ITEM,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        lambda: client.update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="ADD c :one SET s = :s",
            ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": "new"}},
            ReturnValues="ALL_NEW",
            **total,
        ),
        lambda: client.update_item(TableName=TABLE, Key=key, UpdateExpression="REMOVE z", ReturnValues="UPDATED_OLD"),
        lambda: client.get_item(TableName=TABLE, Key=key, **total),
        lambda: client.get_item(TableName=TABLE, Key={"pk": {"S": "none"}, "sk": {"S": "none"}}),
        lambda: client.get_item(TableName=TABLE, Key=key, ProjectionExpression="m.inner, ns"),
        lambda: [
            client.put_item(
                TableName=TABLE, Item={**ITEM, "pk": {"S": pk}, "sk": {"S": f"R#{i:04d}"}, "i": {"N": str(i)}}
            )
            for i in range(2, 8)
            for pk in ("JOB#0", "JOB#1", "JOB#2")  # queries read one partition among others
        ],
        lambda: client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p AND begins_with(sk, :r)",
            ExpressionAttributeValues={":p": {"S": "JOB#1"}, ":r": {"S": "R#"}},
            Limit=3,
            **total,
        ),
        lambda: client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "JOB#1"}},
            ExclusiveStartKey={"pk": {"S": "JOB#1"}, "sk": {"S": "R#0003"}},
            ScanIndexForward=False,
        ),
        lambda: client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "JOB#1"}},
            Select="COUNT",
        ),
        lambda: client.scan(TableName=TABLE, Limit=4, **total),
        lambda: client.batch_get_item(
            RequestItems={TABLE: {"Keys": [key, {"pk": {"S": "JOB#1"}, "sk": {"S": "R#0005"}}]}}, **total
        ),
        lambda: client.batch_write_item(
            RequestItems={
                TABLE: [
                    {"PutRequest": {"Item": {**ITEM, "sk": {"S": "W#1"}}}},
                    {"DeleteRequest": {"Key": {"pk": {"S": "JOB#1"}, "sk": {"S": "R#0007"}}}},
                ]
            },
            **total,
        ),
        lambda: client.transact_get_items(
            TransactItems=[{"Get": {"TableName": TABLE, "Key": key}}, {"Get": {"TableName": TABLE, "Key": key}}]
        ),
        lambda: client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {**ITEM, "sk": {"S": "T#1"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": key,
                        "UpdateExpression": "ADD c :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ],
            **total,
        ),
        lambda: client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": key,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        ),
        lambda: client.delete_item(TableName=TABLE, Key=key, ReturnValues="ALL_OLD", **total),
        *key_window_calls(client),
    ]
    answers = []
    for step in steps:
        try:
            answer = step()
        except ClientError as exc:
            answer = {"error": exc.response["Error"], "cancellation": exc.response.get("CancellationReasons")}
        answers.append(strip_metadata(answer))
    return answers


def key_window_calls(client) -> list:
    """Queries of one partition by sort-key condition, start key, direction and Limit (moto_patches
    reads only the window of keys they can reach): pages that end exactly at the last match, before
    other keys or at the partition's end, and whole partitions paged both ways."""
    pk = {"S": "PAGES"}
    values = {":p": pk}

    def page(condition: str = "", **kwargs):
        expression = "pk = :p" + (f" AND {condition}" if condition else "")
        return client.query(TableName=TABLE, KeyConditionExpression=expression, **kwargs)

    def paged(limit: int, forward: bool, condition: str = "", more: dict | None = None) -> list:
        answers, start = [], None
        while True:
            answer = page(
                condition,
                ExpressionAttributeValues=values | (more or {}),
                Limit=limit,
                ScanIndexForward=forward,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            answers.append(answer)
            start = answer.get("LastEvaluatedKey")
            if not start:
                return answers

    keys = [f"R#{i:04d}" for i in range(30)] + ["S#a", "S#b", "S#c", "T"]
    s = lambda text: {"S": text}  # noqa: E731
    return [
        lambda: [client.put_item(TableName=TABLE, Item={"pk": pk, "sk": s(k), "n": {"N": str(len(k))}}) for k in keys],
        lambda: page(
            "sk BETWEEN :a AND :b", ExpressionAttributeValues=values | {":a": s("R#0005"), ":b": s("R#0014")}, Limit=10
        ),
        lambda: page(
            "sk BETWEEN :a AND :b", ExpressionAttributeValues=values | {":a": s("R#0020"), ":b": s("R#0029")}, Limit=10
        ),
        lambda: page(
            "sk BETWEEN :a AND :b", ExpressionAttributeValues=values | {":a": s("S#a"), ":b": s("T")}, Limit=4
        ),
        lambda: page("sk >= :a", ExpressionAttributeValues=values | {":a": s("R#0025")}, Limit=100),
        lambda: page("sk > :a", ExpressionAttributeValues=values | {":a": s("R#0003x")}, Limit=2),
        lambda: page("sk = :a", ExpressionAttributeValues=values | {":a": s("R#0003")}),
        lambda: page("sk = :a", ExpressionAttributeValues=values | {":a": s("R#0003")}, Limit=1),
        lambda: page(
            "sk < :a",
            ExpressionAttributeValues=values | {":a": s("R#0010")},
            ExclusiveStartKey={"pk": pk, "sk": s("R#0007")},
            ScanIndexForward=False,
            Limit=4,
        ),
        lambda: page(
            "sk <= :a",
            ExpressionAttributeValues=values | {":a": s("R#0004")},
            ScanIndexForward=False,
            Limit=5,
        ),
        lambda: page("begins_with(sk, :a)", ExpressionAttributeValues=values | {":a": s("S#")}, Limit=3),
        lambda: page(
            "sk >= :a",
            ExpressionAttributeValues=values | {":a": s("R#0020")},
            ExclusiveStartKey={"pk": {"S": "JOB#1"}, "sk": s("R#0003")},  # another partition's key
            Limit=3,
        ),
        lambda: paged(7, True),
        lambda: paged(7, False),
        lambda: paged(4, True, "sk BETWEEN :a AND :b", {":a": s("R#0008"), ":b": s("R#0016")}),
        lambda: paged(3, False, "begins_with(sk, :a)", {":a": s("R#001")}),
    ]


def strip_metadata(answer):
    if isinstance(answer, list):
        return [strip_metadata(a) for a in answer]
    return {k: v for k, v in answer.items() if k != "ResponseMetadata"}


def run(monkeypatch, patched: bool) -> list:
    from moto import mock_aws
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.table import Table

    monkeypatch.setattr(moto_patches, "FAST_JSON_ACTIONS", moto_patches.FAST_JSON_ACTIONS if patched else frozenset())
    if not patched:  # moto's own query: the whole table, sorted, its results deep-copied
        monkeypatch.setattr(Table, "all_items", UNPATCHED_ALL_ITEMS)
        monkeypatch.setattr(table_module, "copy", copy)
    with mock_aws():
        return calls(boto3.client("dynamodb", region_name="us-east-1"))


def moto_all_items(self) -> list:
    """moto's Table.all_items (moto/dynamodb/models/table.py), as it is without the patch."""
    items = [item for partition in self.items.values() for item in partition.values()]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


UNPATCHED_ALL_ITEMS = moto_all_items


@pytest.mark.usefixtures("aws_env")
def test_direct_json_answers_as_motos_serialiser_does(monkeypatch):
    moto_patches.install()
    direct = run(monkeypatch, patched=True)
    serialised = run(monkeypatch, patched=False)
    assert len(direct) == len(serialised)
    for number, (fast, reference) in enumerate(zip(direct, serialised, strict=True)):
        assert fast == reference, f"call {number}"
    # The calls did reach every action (and the errors theirs): not a comparison of empty answers.
    assert direct[6]["Item"]["b"] == {"B": ITEM["b"]["B"]} and direct[6]["ConsumedCapacity"]["CapacityUnits"] > 0
    assert direct[10]["Count"] == 3 and "LastEvaluatedKey" in direct[10]
    assert {item["pk"]["S"] for item in direct[11]["Items"]} == {"JOB#1"} and direct[11]["Count"] == 2
    assert direct[3]["error"]["Code"] == "ConditionalCheckFailedException"
    assert direct[18]["error"]["Code"] == "TransactionCanceledException"
    windows = direct[20:]
    assert [i["sk"]["S"] for i in windows[1]["Items"]] == [f"R#{i:04d}" for i in range(5, 15)]
    assert "LastEvaluatedKey" in windows[1] and "LastEvaluatedKey" in windows[2]  # full pages, more keys after
    assert windows[3]["Count"] == 4 and "LastEvaluatedKey" not in windows[3]  # the partition ends at the page
    assert [len(p["Items"]) for p in windows[12]] == [7, 7, 7, 7, 6]  # 34 keys, every page
    assert [i["sk"]["S"] for p in windows[13] for i in p["Items"]][:2] == ["T", "S#c"]
