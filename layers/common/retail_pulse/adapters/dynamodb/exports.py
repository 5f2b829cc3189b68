"""Export items: one per requested export (`EXPORT#<id>` / `EXPORT`), its state and rows so far."""

from __future__ import annotations

import time

from retail_pulse.adapters.dynamodb.items import from_item, to_item
from retail_pulse.adapters.dynamodb.table import TableAccess

EXPORT_SK = "EXPORT"
EXPORT_TTL_S = 7 * 86_400  # as the export files (the data bucket's lifecycle)


def export_key(export_id: str) -> dict[str, str]:
    return {"pk": f"EXPORT#{export_id}", "sk": EXPORT_SK}


class ExportItems(TableAccess):
    def create_export(self, export: dict) -> None:
        item = {**export_key(export["export_id"]), **export, "expires_at": int(time.time()) + EXPORT_TTL_S}
        self.retrying(
            self.client.put_item,
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_export(self, export_id: str) -> dict | None:
        resp = self.retrying(
            self.client.get_item, TableName=self.table_name, Key=to_item(export_key(export_id)), ConsistentRead=True
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def update_export(self, export_id: str, **fields: object) -> None:
        values = {name: value for name, value in fields.items() if value is not None}
        self.retrying(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item(export_key(export_id)),
            UpdateExpression="SET " + ", ".join(f"#{n} = :{n}" for n in values),
            ExpressionAttributeNames={f"#{n}": n for n in values},
            ExpressionAttributeValues=to_item({f":{n}": v for n, v in values.items()}),
        )
