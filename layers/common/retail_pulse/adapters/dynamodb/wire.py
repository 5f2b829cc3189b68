"""The items of DynamoDB's answers to reads, taken from their JSON as they are.

botocore parses an answer by walking the service model: for every attribute value it visits each
member of the AttributeValue shape, about 0.5 ms per result item on one core (a 250-item page takes
longer to parse than to be served). On the wire an item already has the form botocore produces
({"S": ...}, {"N": "..."}, maps and lists of them), except binary values (base64 there, bytes once
parsed). So when an answer holds no binary value, its items are handed over as the JSON has them,
and botocore parses the rest of the answer (counts, the key to go on from, consumed capacity).
"""

from __future__ import annotations

import json
import re
from typing import Any

ITEM_FIELDS = {"GetItem": "Item", "Query": "Items", "Scan": "Items", "BatchGetItem": "Responses"}
_BINARY_VALUE = re.compile(rb'"BS?":')  # in a JSON string a quote is escaped: only a type tag matches


def take_items_from_json(client: Any) -> None:
    """Registers the shortcut on a DynamoDB client (botocore's `before-parse` event, the hook its own
    S3 customizations use)."""
    for operation in ITEM_FIELDS:
        event = f"before-parse.dynamodb.{operation}"
        client.meta.events.register(event, _items_as_sent, unique_id=f"retail-pulse-{event}")


def _items_as_sent(operation_model: Any, response_dict: dict, customized_response_dict: dict, **_: Any) -> None:
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not body or _BINARY_VALUE.search(body):
        return
    answer = json.loads(body)
    field = ITEM_FIELDS[operation_model.name]
    if field in answer:
        customized_response_dict[field] = answer.pop(field)
        response_dict["body"] = json.dumps(answer).encode()
