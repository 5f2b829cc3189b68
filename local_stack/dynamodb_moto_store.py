"""moto's DynamoDB backend as the limits engine reads it, in moto's own process: table
descriptions, items by key, what an UpdateItem would leave (moto's own expression code run on a
copy), and the items a Query or Scan read before its filter (metered inside moto's `Table.query` and
`Table.scan`, which is what AWS charges for).
"""

from __future__ import annotations

import copy
import inspect
import threading
from typing import Any

from .dynamodb_items import Item, TableSchema
from .dynamodb_requests import UPDATE_TOO_LARGE, validation

meter = threading.local()  # items a Query/Scan of this thread read, before its filter


class _MeteredFilter:
    """Stands in for a Query's or Scan's filter inside moto: moto evaluates it on every item the
    request read (after the key condition, before the filter), which is what AWS charges."""

    def __init__(self, inner: Any, reads: list[Item]) -> None:
        self._inner = inner
        self._reads = reads

    def expr(self, item: Any) -> bool:
        self._reads.append(item.to_json()["Attributes"])
        return True if self._inner is None else self._inner.expr(item)


_meter_installed = False


def install_read_meter() -> None:
    global _meter_installed  # noqa: PLW0603 - patch once per process
    if _meter_installed:
        return
    from moto.dynamodb.models.table import Table

    for name in ("query", "scan"):
        original = getattr(Table, name)
        signature = inspect.signature(original)

        def metered(*args: Any, _original: Any = original, _signature: Any = signature, **kwargs: Any) -> Any:
            reads = getattr(meter, "reads", None)
            if reads is None:
                return _original(*args, **kwargs)
            bound = _signature.bind(*args, **kwargs)
            bound.apply_defaults()
            bound.arguments["filter_expression"] = _MeteredFilter(bound.arguments["filter_expression"], reads)
            return _original(*bound.args, **bound.kwargs)

        setattr(Table, name, metered)
    _meter_installed = True


class MotoStore:
    """Tables and items as moto's DynamoDB backend holds them (call under moto's lock)."""

    def _table(self, region: str, name: str) -> Any:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)

    def schema(self, region: str, name: str) -> TableSchema | None:
        try:
            table = self._table(region, name)
        except Exception:  # an unknown table: moto answers the request itself
            return None
        return TableSchema.from_description(table.describe(base_key="Table")["Table"])

    def _moto_item(self, region: str, schema: TableSchema, key: Item) -> tuple[Any, Any]:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._table(region, schema.name)
        hash_value = DynamoType(key[schema.hash_key])
        range_value = DynamoType(key[schema.range_key]) if schema.range_key else None
        return table, table.get_item(hash_value, range_value)

    def item(self, region: str, schema: TableSchema, key: Item) -> Item | None:
        try:
            _, item = self._moto_item(region, schema, key)
        except Exception:  # a malformed key: moto reports it
            return None
        return item.to_json()["Attributes"] if item is not None else None

    def updated(self, region: str, schema: TableSchema, key: Item, request: dict) -> Item | None:
        """The item as an UpdateItem would leave it, computed on a copy with moto's own code (None
        when moto would refuse the update: it then reports why)."""
        from moto.dynamodb.exceptions import ItemSizeTooLarge
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.dynamo_type import Item as MotoItem
        from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
        from moto.dynamodb.parsing.expressions import UpdateExpressionParser
        from moto.dynamodb.parsing.validators import UpdateExpressionValidator

        try:
            table, current = self._moto_item(region, schema, key)
            if current is None:
                hash_value = DynamoType(key[schema.hash_key])
                range_value = DynamoType(key[schema.range_key]) if schema.range_key else None
                item = MotoItem(hash_value, range_value, attrs=dict(key))
            else:
                item = copy.deepcopy(current)
            names = request.get("ExpressionAttributeNames") or {}
            if request.get("UpdateExpression"):
                validated = UpdateExpressionValidator(
                    UpdateExpressionParser.make(request["UpdateExpression"]),
                    expression_attribute_names=names,
                    expression_attribute_values=request.get("ExpressionAttributeValues") or {},
                    item=item,
                    table=table,
                ).validate()
                validated.normalize()
                UpdateExpressionExecutor(validated, item, names).execute()
            elif request.get("AttributeUpdates"):
                item.update_with_attribute_updates(request["AttributeUpdates"])
        except ItemSizeTooLarge:
            raise validation(UPDATE_TOO_LARGE) from None
        except Exception:  # moto refuses the update when it runs it
            return None
        return item.to_json()["Attributes"]


def metered_reads() -> list[Item]:
    """Start metering this thread's Query/Scan; stop_metering() ends it."""
    reads: list[Item] = []
    meter.reads = reads
    return reads


def stop_metering() -> None:
    meter.reads = None
