"""Plain Python values <-> DynamoDB attribute values, shared by the data-access modules."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Attribute values of `values`; None means "no such attribute" and is left out."""
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain values of an item; numbers come back as int (or float), not Decimal."""
    out = {}
    for key, value in item.items():
        plain = _deserializer.deserialize(value)
        if hasattr(plain, "as_integer_ratio") and not isinstance(plain, (int, float)):
            plain = int(plain) if plain == int(plain) else float(plain)
        out[key] = plain
    return out
