"""What DynamoDB itself knows about an item: its size, the capacity units it costs, its key, and the
entry it has in each global secondary index.

Everything here works on the wire format (`{"name": {"S": "value"}}`) and on a table's description
(DescribeTable's `Table`), so it knows nothing about any application's item shapes.

Item size ("DynamoDB item sizes and formats", CapacityUnitCalculations.html): the sum of attribute
name lengths (UTF-8) and value sizes, where strings are their UTF-8 bytes, numbers about one byte
per two significant digits plus one, binaries their raw bytes, null and booleans one byte, lists and
maps 3 bytes plus one byte per element plus the elements' sizes (a map element's name counts), and
sets the sum of their elements. Capacity units ("Read/write capacity mode"): a write costs one WCU
per started 1 KB, a strongly consistent read one RCU per started 4 KB (half for eventually
consistent reads).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

Item = dict[str, dict[str, Any]]  # an item (or a key) in DynamoDB's wire format

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
MAX_ITEM_BYTES = 400 * 1024
CONTAINER_OVERHEAD_BYTES = 3  # a list or a map, whatever it holds
ELEMENT_OVERHEAD_BYTES = 1  # each element of a list or a map


def number_size(text: str) -> int:
    """Leading and trailing zeros do not count; one byte per two significant digits, plus one."""
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")  # 1000 is 1 x 10^3: one significant digit
    return math.ceil(len(digits) / 2) + 1


def binary_size(value: str | bytes) -> int:
    # On the wire a binary is base64; its size is the raw bytes'.
    return len(value) if isinstance(value, bytes | bytearray) else len(base64.b64decode(value))


_SCALAR_SIZES: dict[str, Any] = {
    "S": lambda s: len(s.encode()),
    "N": number_size,
    "B": binary_size,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda values: sum(len(s.encode()) for s in values),
    "NS": lambda values: sum(number_size(n) for n in values),
    "BS": lambda values: sum(binary_size(b) for b in values),
}


def value_size(value: dict[str, Any]) -> int:
    """Size of one attribute value (without its name)."""
    kind, content = next(iter(value.items()))
    if kind == "L":
        return CONTAINER_OVERHEAD_BYTES + sum(ELEMENT_OVERHEAD_BYTES + value_size(v) for v in content)
    if kind == "M":
        return CONTAINER_OVERHEAD_BYTES + sum(
            ELEMENT_OVERHEAD_BYTES + len(name.encode()) + value_size(v) for name, v in content.items()
        )
    if kind not in _SCALAR_SIZES:
        raise ValueError(f"unknown attribute type {kind!r}")
    return _SCALAR_SIZES[kind](content)


def item_size(item: Item | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """WCU of writing `size` bytes once (an absent item still costs one unit)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """RCU of reading `size` bytes in one request (nothing read still costs the minimum)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def canonical(value: Any) -> str:
    """A stable text for a key or a key value, usable as a dictionary key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class IndexSchema:
    name: str
    hash_key: str
    range_key: str | None
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: frozenset[str]
    warm_read_units: float | None = None
    warm_write_units: float | None = None


def _keys(key_schema: list[dict[str, str]]) -> tuple[str, str | None]:
    hash_key = next(k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH")
    range_key = next((k["AttributeName"] for k in key_schema if k["KeyType"] == "RANGE"), None)
    return hash_key, range_key


def _warm(description: dict, kind: str) -> float | None:
    value = (description.get("WarmThroughput") or {}).get(kind)
    return float(value) if value else None


@dataclass(frozen=True)
class TableSchema:
    """A table's keys and global secondary indexes, as DescribeTable tells them."""

    name: str
    arn: str
    hash_key: str
    range_key: str | None
    on_demand: bool
    indexes: tuple[IndexSchema, ...] = ()
    warm_read_units: float | None = None
    warm_write_units: float | None = None

    @classmethod
    def from_description(cls, table: dict) -> TableSchema:
        """`table` is DescribeTable's `Table` (moto's `Table.describe()["Table"]` is the same)."""
        hash_key, range_key = _keys(table["KeySchema"])
        indexes = []
        for index in table.get("GlobalSecondaryIndexes") or []:
            index_hash, index_range = _keys(index["KeySchema"])
            projection = index.get("Projection") or {}
            indexes.append(
                IndexSchema(
                    name=index["IndexName"],
                    hash_key=index_hash,
                    range_key=index_range,
                    projection=projection.get("ProjectionType", "ALL"),
                    non_key_attributes=frozenset(projection.get("NonKeyAttributes") or ()),
                    warm_read_units=_warm(index, "ReadUnitsPerSecond"),
                    warm_write_units=_warm(index, "WriteUnitsPerSecond"),
                )
            )
        billing = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
        return cls(
            name=table["TableName"],
            arn=table.get("TableArn", ""),
            hash_key=hash_key,
            range_key=range_key,
            on_demand=billing == "PAY_PER_REQUEST",
            indexes=tuple(indexes),
            warm_read_units=_warm(table, "ReadUnitsPerSecond"),
            warm_write_units=_warm(table, "WriteUnitsPerSecond"),
        )

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.hash_key, self.range_key) if self.range_key else (self.hash_key,)

    def key_of(self, item: Item) -> Item:
        return {name: item[name] for name in self.key_names if name in item}

    def item_id(self, key: Item) -> str:
        """Identifies one item of this table (the conflict model's unit)."""
        return canonical([self.name, self.key_of(key)])

    def partition_of(self, item: Item) -> str:
        return canonical(item.get(self.hash_key))

    def index(self, name: str) -> IndexSchema | None:
        return next((index for index in self.indexes if index.name == name), None)

    def index_arn(self, index: str | None) -> str:
        return f"{self.arn}/index/{index}" if index else self.arn

    def index_entry(self, index: IndexSchema, item: Item | None) -> Item | None:
        """The item's entry in a GSI (its projected attributes), or None when it has none: a GSI
        holds only the items that carry all of its key attributes."""
        if not item or index.hash_key not in item or (index.range_key and index.range_key not in item):
            return None
        keys = {*self.key_names, index.hash_key, *([index.range_key] if index.range_key else [])}
        if index.projection == "ALL":
            return dict(item)
        wanted = keys | (index.non_key_attributes if index.projection == "INCLUDE" else frozenset())
        return {name: value for name, value in item.items() if name in wanted}

    def index_key(self, index: IndexSchema, entry: Item) -> str:
        names = (index.hash_key, index.range_key) if index.range_key else (index.hash_key,)
        return canonical([entry.get(name) for name in names])
