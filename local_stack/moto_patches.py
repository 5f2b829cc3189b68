"""Makes moto's DynamoDB usable at the local stack's scale.

moto backs up each table touched by a TransactWriteItems with `copy.deepcopy` of the whole table
(once per item of the transaction) so it can roll back on cancellation: with a job of thousands of
results that is hundreds of milliseconds per batch, and it grows with the table. This patch keeps
moto's own transaction logic and instead saves and restores only the items the transaction
touches, which gives the same all-or-nothing outcome.
"""

from __future__ import annotations

import copy
from typing import Any

_installed = False


class _CopyWithoutTables:
    """Stands in for the `copy` module inside moto's DynamoDB models during one transaction."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, self._table_type) else copy.deepcopy(value, memo)


def install() -> None:
    global _installed  # noqa: PLW0603 - patch once per process
    if _installed:
        return
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    no_table_copies = _CopyWithoutTables(Table)

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict, dict | None]] = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if op_type == "Put":
                key_names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                key = {name: op["Item"][name] for name in key_names if name in op["Item"]}
            else:
                key = op.get("Key") or {}
            try:
                current = self.get_item(table.name, key)
            except Exception:  # noqa: S112 - an invalid key: moto's own logic reports it
                continue
            saved.append((table.name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        models.copy = no_table_copies
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(saved):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise
        finally:
            models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items
    _installed = True
