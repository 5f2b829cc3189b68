"""Puts the limits model in front of moto's DynamoDB: one request at a time, whatever carries it
(the WSGI middleware of the local stack's moto process, or botocore hooks with `mock_aws`).

For each request: AWS's shape checks; the commit-window conflicts (at arrival, before moto's lock,
so holds overlap in wall time as they would on AWS); then, under moto's lock, the items' sizes
before and after (read from moto's backend in this process; an update is simulated with moto's own
expression code on a copy), the throughput decision, moto itself, and the settlement of what the
request turned out to cost (updates, and Query/Scan, whose items read before the filter are metered
inside moto's `Table.query`/`Table.scan`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .dynamodb_items import MAX_ITEM_BYTES, Item, TableSchema, canonical, item_size, read_units
from .dynamodb_limits import Charge, DynamoDBLimits, HoldToken
from .dynamodb_moto_store import MotoStore, install_read_meter, metered_reads, stop_metering
from .dynamodb_requests import (
    CONFLICT_MESSAGE,
    READS,
    SCHEMA_CHANGES,
    UPDATE_TOO_LARGE,
    WRITES,
    ItemOp,
    RawResponse,
    Refusal,
    check_put_sizes,
    conflict_cancellation,
    item_ops,
    json_response,
    query_partition,
    table_name,
    throttle_cancellation,
    throughput_exceeded,
    validation,
    write_charges,
)

Execute = Callable[[bytes], RawResponse]
Locked = Callable[[bool], AbstractContextManager]  # locked(write) holds moto's lock
MODELLED = WRITES | READS | SCHEMA_CHANGES
CHARGED_ERRORS = {"ConditionalCheckFailedException", "TransactionCanceledException"}  # AWS charges these
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


def region_of(authorization: str, default: str = "us-east-1") -> str:
    match = _REGION.search(authorization or "")
    return match.group(1) if match else default


# -- the engine ----------------------------------------------------------------------------------
def _error_code(response: RawResponse) -> str | None:
    status, _, body = response
    if status < 300:
        return None
    try:
        return str(json.loads(body).get("__type", "")).rsplit("#", 1)[-1]
    except ValueError:
        return "InternalFailure"


def _with_fields(response: RawResponse, fields: dict) -> RawResponse:
    """moto's answer with fields added (a batch's unprocessed items), headers recomputed."""
    status, headers, body = response
    _, new_headers, data = json_response(status, {**json.loads(body or b"{}"), **fields})
    kept = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "x-amz-crc32")}
    return status, {**kept, **{k: v for k, v in new_headers.items() if k != "x-amzn-RequestId"}}, data


def _difference(actual: Sequence[Charge], estimated: Sequence[Charge]) -> list[Charge]:
    totals: dict[tuple, list] = {}
    for sign, charges in ((1, actual), (-1, estimated)):
        for charge in charges:
            key = (charge.table, charge.index, charge.partition, charge.write)
            entry = totals.setdefault(key, [0.0, charge])
            entry[0] += sign * charge.units
    return [
        Charge(t, i, p, units, w, start_units=charge.start_units)
        for (t, i, p, w), (units, charge) in totals.items()
        if units
    ]


def _negated(charges: Sequence[Charge]) -> list[Charge]:
    return [Charge(c.table, c.index, c.partition, -c.units, c.write, c.item, c.start_units) for c in charges]


@dataclass
class _Call:
    """One request on its way through the engine."""

    operation: str
    request: dict
    body: bytes
    region: str
    execute: Execute
    locked: Locked


class LimitsEngine:
    def __init__(self, limits: DynamoDBLimits, store: MotoStore | None = None) -> None:
        self.limits = limits
        self.store = store or MotoStore()
        self._schemas: dict[tuple[str, str], TableSchema] = {}
        install_read_meter()

    def _schema_of(self, region: str, locked: Locked) -> Callable[[str], TableSchema | None]:
        def schema_of(name: str) -> TableSchema | None:
            schema = self._schemas.get((region, name))
            if schema is None:
                with locked(False):
                    schema = self.store.schema(region, name)
                if schema is not None:
                    self._schemas[(region, name)] = schema
            return schema

        return schema_of

    def handle(self, operation: str, body: bytes, region: str, execute: Execute, locked: Locked) -> RawResponse:
        """Answer one DynamoDB request (`operation` in MODELLED) as AWS would within its limits."""
        if operation in SCHEMA_CHANGES:
            with locked(True):
                response = execute(body)
            self._schemas.clear()
            return response
        call = _Call(operation, json.loads(body or b"{}"), body, region, execute, locked)
        try:
            if operation in WRITES:
                return self._write(call)
            if operation in ("Query", "Scan"):
                return self._query_or_scan(call)
            return self._key_read(call)
        except Refusal as refusal:
            self.limits.count(refusal.counter)
            if refusal.by_gsi:
                self.limits.count("throttled_by_gsi")
            return refusal.response()

    # -- writes --------------------------------------------------------------------------------
    def _after(self, region: str, op: ItemOp, before: Item | None) -> Item | None:
        if op.action == "put":
            return op.request["Item"]
        if op.action == "delete":
            return None
        if op.action == "update":
            after = self.store.updated(region, op.table, op.key, op.request)
            if after is not None and item_size(after) > MAX_ITEM_BYTES:
                raise validation(UPDATE_TOO_LARGE)
            return before if after is None else after
        return before  # ConditionCheck

    def _write(self, call: _Call) -> RawResponse:
        ops = item_ops(call.operation, call.request, self._schema_of(call.region, call.locked))
        if ops is None:
            with call.locked(True):
                return call.execute(call.body)
        transaction = call.operation == "TransactWriteItems"
        check_put_sizes(ops, transaction)
        ids = [op.item_id for op in ops]
        token: HoldToken | None
        if transaction:
            token, conflicts = self.limits.begin_transaction(ids)
            if conflicts:
                raise conflict_cancellation(len(ops), conflicts)
        else:
            token, conflicts = self.limits.begin_write(ids)
            if conflicts:
                # BatchWriteItem too: its API does not say how it reports this; the whole call fails.
                raise Refusal("TransactionConflictException", CONFLICT_MESSAGE, "plain_write_conflicts")
        try:
            with call.locked(True):
                return self._write_locked(call, ops, transaction)
        except Refusal:
            self.limits.cancel(token)
            raise
        finally:
            self.limits.finish(token)

    def _write_locked(self, call: _Call, ops: list[ItemOp], transaction: bool) -> RawResponse:
        region, body = call.region, call.body
        befores = [self.store.item(region, op.table, op.key) for op in ops]
        afters = [self._after(region, op, before) for op, before in zip(ops, befores, strict=True)]
        groups = [
            write_charges(op, i, before, after, transaction)
            for i, (op, before, after) in enumerate(zip(ops, befores, afters, strict=True))
        ]
        schemas = {op.table.name: op.table for op in ops}
        admitted = list(range(len(ops)))
        extra: dict = {}
        if call.operation == "BatchWriteItem":
            throttled: list = []
            unprocessed: dict[str, list] = {}
            admitted = []
            entries = [(name, r) for name, rs in call.request["RequestItems"].items() for r in rs]
            for i, charges in enumerate(groups):
                refused = self.limits.try_consume(charges)
                if refused:
                    throttled += refused
                    unprocessed.setdefault(entries[i][0], []).append(entries[i][1])
                else:
                    admitted.append(i)
            if not admitted:
                raise throughput_exceeded(throttled, schemas)
            if unprocessed:
                self.limits.count("unprocessed_batch_items", len(ops) - len(admitted))
                kept: dict[str, list] = {}
                for i in admitted:
                    kept.setdefault(entries[i][0], []).append(entries[i][1])
                body = json.dumps({**call.request, "RequestItems": kept}).encode()
                extra = {"UnprocessedItems": unprocessed}
        else:
            refused = self.limits.try_consume([charge for group in groups for charge in group])
            if refused:
                raise throttle_cancellation(len(ops), refused) if transaction else throughput_exceeded(refused, schemas)
        response = call.execute(body)
        spent = [charge for i in admitted for charge in groups[i]]
        code = _error_code(response)
        if code and code not in CHARGED_ERRORS:
            self.limits.spend(_negated(spent))  # refused by moto: AWS would not charge it either
        elif not code and any(ops[i].action == "update" for i in admitted):
            actual = [
                write_charges(ops[i], i, befores[i], self.store.item(region, ops[i].table, ops[i].key), transaction)
                if ops[i].action == "update"
                else groups[i]
                for i in admitted
            ]
            self.limits.spend(_difference([c for group in actual for c in group], spent))
        if extra:
            response = _with_fields(response, extra)
        return response

    # -- reads ---------------------------------------------------------------------------------
    def _key_read(self, call: _Call) -> RawResponse:
        ops = item_ops(call.operation, call.request, self._schema_of(call.region, call.locked))
        if ops is None:
            with call.locked(False):
                return call.execute(call.body)
        transaction = call.operation == "TransactGetItems"
        body = call.body
        if transaction:
            conflicts = self.limits.transaction_read_conflicts([op.item_id for op in ops])
            if conflicts:
                raise conflict_cancellation(len(ops), conflicts)
        schemas = {op.table.name: op.table for op in ops}
        with call.locked(False):
            charges = []
            for i, op in enumerate(ops):
                consistent = transaction or bool(op.request.get("ConsistentRead"))
                size = item_size(self.store.item(call.region, op.table, op.key))
                units = read_units(size, consistent) * (2 if transaction else 1)
                partition = op.table.partition_of(op.key)
                charges.append(Charge(op.table.name, None, partition, units, False, i, op.table.warm_read_units))
            extra: dict = {}
            if call.operation == "BatchGetItem":
                throttled = []
                gets_refused: list[ItemOp] = []
                admitted_gets: list[ItemOp] = []
                for op, charge in zip(ops, charges, strict=True):
                    refused = self.limits.try_consume([charge])
                    throttled += refused
                    (gets_refused if refused else admitted_gets).append(op)
                if not admitted_gets:
                    raise throughput_exceeded(throttled, schemas)
                if gets_refused:
                    self.limits.count("unprocessed_batch_items", len(gets_refused))
                    kept_keys = self._batch_keys(call.request, admitted_gets)
                    body = json.dumps({**call.request, "RequestItems": kept_keys}).encode()
                    extra = {"UnprocessedKeys": self._batch_keys(call.request, gets_refused)}
            else:
                refused = self.limits.try_consume(charges)
                if refused and transaction:
                    raise throttle_cancellation(len(ops), refused)
                if refused:
                    raise throughput_exceeded(refused, schemas)
            response = call.execute(body)
        return _with_fields(response, extra) if extra else response

    @staticmethod
    def _batch_keys(request: dict, ops: Sequence[ItemOp]) -> dict:
        """BatchGetItem's RequestItems holding only these items' keys (each table's options kept)."""
        out: dict[str, dict] = {}
        for name, spec in request["RequestItems"].items():
            keys = [op.key for op in ops if op.request is spec]
            if keys:
                out[name] = {**spec, "Keys": keys}
        return out

    def _query_or_scan(self, call: _Call) -> RawResponse:
        request = call.request
        schema = self._schema_of(call.region, call.locked)(table_name(request.get("TableName", "")))
        if schema is None:
            with call.locked(False):
                return call.execute(call.body)
        consistent = bool(request.get("ConsistentRead"))
        index_name = request.get("IndexName")
        gsi = schema.index(index_name) if index_name else None
        hash_key = gsi.hash_key if gsi else schema.hash_key
        warm = gsi.warm_read_units if gsi else schema.warm_read_units
        probe: list[Charge] = []
        if call.operation == "Query":
            _, partition = query_partition(request, schema)
            if partition is not None:
                # What a Query costs is known only once it ran: it is admitted while its partition has
                # budget left, and then charged what it read (possibly running a debt).
                probe = [Charge(schema.name, index_name, partition, read_units(0, consistent), False, 0, warm)]
        with call.locked(False):
            refused = self.limits.try_consume(probe) if probe else []
            if refused:
                raise throughput_exceeded(refused, {schema.name: schema})
            reads = metered_reads()
            try:
                response = call.execute(call.body)
            finally:
                stop_metering()
        sizes = [item_size(item) for item in reads]
        total = sum(sizes)
        units = read_units(total, consistent)
        by_partition: dict[str, int] = {}
        for item, size in zip(reads, sizes, strict=True):
            partition = canonical(item.get(hash_key))
            by_partition[partition] = by_partition.get(partition, 0) + size
        if not by_partition and probe:
            by_partition = {probe[0].partition: 0}
        actual = [
            Charge(schema.name, index_name, partition, units * (size / total if total else 1), False, 0, warm)
            for partition, size in by_partition.items()
        ]
        self.limits.spend(_difference(actual, probe))
        return response
