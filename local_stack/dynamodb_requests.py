"""DynamoDB requests as the limits model sees them: the items each one touches, what it costs, the
shape checks AWS makes, and AWS's error responses (status, `__type`, message and fields) for the
refusals the model decides.

Error shapes follow the API reference: `TransactionCanceledException` carries `Message` and one
`CancellationReasons` entry per item in request order (`{"Code": "None"}` for an item without
error); `ProvisionedThroughputExceededException` carries `message` and `ThrottlingReasons`
(`{"reason": "<Table|Index><Read|Write><Limit>", "resource": <ARN>}`, API_ThrottlingReason.html);
`TransactionConflictException` carries `message`.
"""

from __future__ import annotations

import binascii
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .dynamodb_items import MAX_ITEM_BYTES, Item, TableSchema, canonical, item_size, write_units
from .dynamodb_limits import Charge, Throttle

RawResponse = tuple[int, dict[str, str], bytes]
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
SCHEMA_CHANGES = {"CreateTable", "UpdateTable", "DeleteTable"}

MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_BATCH_WRITE_ITEMS = 25
MAX_BATCH_GET_KEYS = 100

CONFLICT_MESSAGE = "Transaction is ongoing for the item"
TABLE_THROTTLE_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling "
    "your table or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html."
)
INDEX_THROTTLE_MESSAGE = (
    "Throughput exceeds the current capacity for one or more global secondary indexes. "
    "DynamoDB is automatically scaling your index so please try again shortly."
)
ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"
DUPLICATE_ITEM = "Transaction request cannot include multiple operations on one item"
TRANSACTION_TOO_LARGE = "Transaction request size has exceeded the maximum allowed size"


def json_response(status: int, body: dict) -> RawResponse:
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "Content-Length": str(len(data)),
        "x-amzn-RequestId": str(uuid.uuid4()),
        # botocore checks DynamoDB bodies against this header (and retries when they differ).
        "x-amz-crc32": str(binascii.crc32(data) & 0xFFFFFFFF),
    }
    return status, headers, data


class Refusal(Exception):
    """A request the model refuses, as AWS would answer it; `counter` is what it counts as."""

    def __init__(self, code: str, message: str, counter: str, fields: dict | None = None, capital: bool = False):
        super().__init__(message)
        self.by_gsi = False  # a GSI's budget refused it (counted as throttled_by_gsi too)
        self.code = code
        self.message = message
        self.counter = counter
        self.fields = fields or {}
        self.capital = capital  # TransactionCanceledException spells it `Message`

    def response(self) -> RawResponse:
        body = {"__type": ERROR_PREFIX + self.code, ("Message" if self.capital else "message"): self.message}
        return json_response(400, {**body, **self.fields})


def validation(message: str) -> Refusal:
    return Refusal("ValidationException", message, "validation_refusals")


def cancellation(reasons: Sequence[dict], counter: str) -> Refusal:
    codes = ", ".join(reason["Code"] for reason in reasons)
    message = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]"
    return Refusal(
        "TransactionCanceledException", message, counter, {"CancellationReasons": list(reasons)}, capital=True
    )


def conflict_cancellation(count: int, conflicts: Sequence[int]) -> Refusal:
    reasons = [
        {"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE} if i in conflicts else {"Code": "None"}
        for i in range(count)
    ]
    return cancellation(reasons, "transaction_conflicts")


def throttle_cancellation(count: int, throttles: Sequence[Throttle]) -> Refusal:
    by_item: dict[int, str] = {}
    for throttle in throttles:
        message = INDEX_THROTTLE_MESSAGE if throttle.charge.index else TABLE_THROTTLE_MESSAGE
        if by_item.get(throttle.charge.item) != TABLE_THROTTLE_MESSAGE:
            by_item[throttle.charge.item] = message
    reasons = [
        {"Code": "ThrottlingError", "Message": by_item[i]} if i in by_item else {"Code": "None"} for i in range(count)
    ]
    refusal = cancellation(reasons, "throttled_transactions")
    refusal.by_gsi = any(throttle.charge.index for throttle in throttles)
    return refusal


def throttling_reasons(throttles: Sequence[Throttle], schemas: dict[str, TableSchema]) -> list[dict[str, str]]:
    reasons: list[dict[str, str]] = []
    for throttle in throttles:
        charge = throttle.charge
        kind = ("Index" if charge.index else "Table") + ("Write" if charge.write else "Read")
        reason = {
            "reason": f"{kind}{throttle.limit}ThroughputExceeded"
            if throttle.limit == "KeyRange"
            else f"{kind}{throttle.limit}Exceeded",
            "resource": schemas[charge.table].index_arn(charge.index),
        }
        if reason not in reasons:
            reasons.append(reason)
    return reasons


def throughput_exceeded(throttles: Sequence[Throttle], schemas: dict[str, TableSchema]) -> Refusal:
    only_indexes = all(throttle.charge.index for throttle in throttles)
    refusal = Refusal(
        "ProvisionedThroughputExceededException",
        INDEX_THROTTLE_MESSAGE if only_indexes else TABLE_THROTTLE_MESSAGE,
        "throttled_plain_operations",
        {"ThrottlingReasons": throttling_reasons(throttles, schemas)},
    )
    refusal.by_gsi = any(throttle.charge.index for throttle in throttles)
    return refusal


def table_name(name_or_arn: str) -> str:
    return name_or_arn.split(":table/", 1)[1].split("/", 1)[0] if name_or_arn.startswith("arn:") else name_or_arn


@dataclass
class ItemOp:
    """One item a request touches. `action`: put, update, delete, check (ConditionCheck) or get."""

    table: TableSchema
    key: Item
    action: str
    request: dict[str, Any]  # the item's part of the request (Put's Item, Update's expressions...)
    item_id: str = field(init=False)

    def __post_init__(self) -> None:
        self.item_id = self.table.item_id(self.key)


def item_ops(operation: str, body: dict, schema_of: Callable[[str], TableSchema | None]) -> list[ItemOp] | None:
    """The items a write or a key read touches (None when a table is unknown: moto answers that).
    Raises the ValidationException AWS answers for too many items or a repeated item."""
    found: list[tuple[str, str, dict, Item]] = []  # (table, action, request part, key or item)
    if operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem"):
        action = {"PutItem": "put", "UpdateItem": "update", "DeleteItem": "delete", "GetItem": "get"}[operation]
        found.append((body["TableName"], action, body, body["Item"] if action == "put" else body["Key"]))
    elif operation == "TransactWriteItems":
        entries = body.get("TransactItems") or []
        if len(entries) > MAX_TRANSACTION_ITEMS:
            raise validation(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_TRANSACTION_ITEMS}"
            )
        for entry in entries:
            kind, part = next(iter(entry.items()))
            action = {"Put": "put", "Update": "update", "Delete": "delete", "ConditionCheck": "check"}[kind]
            found.append((part["TableName"], action, part, part["Item"] if action == "put" else part["Key"]))
    elif operation == "TransactGetItems":
        entries = body.get("TransactItems") or []
        if len(entries) > MAX_TRANSACTION_ITEMS:
            raise validation(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_TRANSACTION_ITEMS}"
            )
        for entry in entries:
            part = entry["Get"]
            found.append((part["TableName"], "get", part, part["Key"]))
    elif operation == "BatchWriteItem":
        requests = [(name, r) for name, rs in (body.get("RequestItems") or {}).items() for r in rs]
        if len(requests) > MAX_BATCH_WRITE_ITEMS:
            raise validation("Too many items requested for the BatchWriteItem call")
        for name, request in requests:
            if "PutRequest" in request:
                found.append((name, "put", request["PutRequest"], request["PutRequest"]["Item"]))
            else:
                found.append((name, "delete", request["DeleteRequest"], request["DeleteRequest"]["Key"]))
    elif operation == "BatchGetItem":
        tables = body.get("RequestItems") or {}
        if sum(len(spec.get("Keys") or []) for spec in tables.values()) > MAX_BATCH_GET_KEYS:
            raise validation("Too many items requested for the BatchGetItem call")
        for name, spec in tables.items():
            found.extend((name, "get", spec, key) for key in spec.get("Keys") or [])
    ops: list[ItemOp] = []
    for name, action, part, item in found:
        schema = schema_of(table_name(name))
        if schema is None:
            return None
        ops.append(ItemOp(schema, schema.key_of(item), action, part))
    if operation in ("TransactWriteItems", "TransactGetItems") and len({op.item_id for op in ops}) < len(ops):
        raise validation(DUPLICATE_ITEM)
    return ops


def check_put_sizes(ops: Sequence[ItemOp], transaction: bool) -> None:
    """Items written whole (Put) must fit 400 KB; a transaction's items must fit 4 MB together."""
    sizes = [item_size(op.request["Item"]) if op.action == "put" else 0 for op in ops]
    if any(size > MAX_ITEM_BYTES for size in sizes):
        raise validation(ITEM_TOO_LARGE)
    if transaction and sum(sizes) > MAX_TRANSACTION_BYTES:
        raise validation(TRANSACTION_TOO_LARGE)


def write_charges(op: ItemOp, index: int, before: Item | None, after: Item | None, transaction: bool) -> list[Charge]:
    """What writing one item costs: the larger of its sizes before and after, per started KB (twice
    in a transaction: prepare and commit), plus each GSI entry it adds, changes or removes (a key
    change is a delete and a put). ConditionCheck is charged like a write of the unchanged item."""
    schema = op.table
    multiplier = 2 if transaction else 1
    units = write_units(max(item_size(before), item_size(after))) * multiplier
    partition = schema.partition_of(op.key)
    charges = [Charge(schema.name, None, partition, units, True, index, schema.warm_write_units)]
    if op.action == "check":
        return charges
    for gsi in schema.indexes:
        old, new = schema.index_entry(gsi, before), schema.index_entry(gsi, after)
        if old == new:
            continue  # no entry, or an entry the write leaves as it was
        writes: list[tuple[Item, int]] = []
        if old is not None and new is not None and schema.index_key(gsi, old) == schema.index_key(gsi, new):
            writes.append((new, write_units(max(item_size(old), item_size(new)))))
        else:
            writes += [(entry, write_units(item_size(entry))) for entry in (old, new) if entry is not None]
        charges += [
            Charge(schema.name, gsi.name, canonical(entry.get(gsi.hash_key)), units, True, index, gsi.warm_write_units)
            for entry, units in writes
        ]
    return charges


def canonical_partition(item: Item, hash_key: str) -> str:
    return canonical(item.get(hash_key))


_EQUALITY = re.compile(r"([#:]?[\w.]+)\s*=\s*([#:]?[\w.]+)")


def query_partition(body: dict, schema: TableSchema) -> tuple[str | None, str | None]:
    """(index name, partition key value) a Query reads; the value is None when it cannot be told."""
    index_name = body.get("IndexName")
    gsi = schema.index(index_name) if index_name else None
    hash_key = gsi.hash_key if gsi else schema.hash_key
    legacy = (body.get("KeyConditions") or {}).get(hash_key)
    if legacy and legacy.get("ComparisonOperator") == "EQ":
        return index_name, canonical_partition({hash_key: legacy["AttributeValueList"][0]}, hash_key)
    names = body.get("ExpressionAttributeNames") or {}
    values = body.get("ExpressionAttributeValues") or {}
    for left, right in _EQUALITY.findall(body.get("KeyConditionExpression") or ""):
        for name, value in ((left, right), (right, left)):
            if names.get(name, name) == hash_key and value in values:
                return index_name, canonical_partition({hash_key: values[value]}, hash_key)
    return index_name, None
