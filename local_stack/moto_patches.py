"""Makes moto's DynamoDB usable at the local stack's scale. `install()` patches moto's classes in the
current process: the local stack's moto server, and the in-process tests and benchmarks (mock_aws).

- **Transactions**: moto backs up each table touched by a TransactWriteItems with `copy.deepcopy` of
  the whole table (once per item of the transaction) so it can roll back on cancellation: with a job
  of thousands of results that is hundreds of milliseconds per batch, and it grows with the table.
  This patch keeps moto's own transaction logic and instead saves and restores only the items the
  transaction touches, which gives the same all-or-nothing outcome. A cancelled transaction leaves
  no stream record, as on AWS (moto's table copy used to take the stream back with it): the records
  its writes made are taken back, and the restore itself writes none.
- **Streams**: moto keeps every stream record of a table forever, each built (JSON-sized) at write
  time. Here a GetRecords drops the records before the position it reads from (the stream pump is
  the only reader, see devkit/streams.py), sequence numbers stay as they were, TRIM_HORIZON means
  the oldest record kept, reading before it is a TrimmedDataAccessException as on AWS, a record's
  size is computed when it is read, and shard iterators expire after 15 minutes as on AWS instead
  of piling up (one per GetRecords).
- **GetRecords responses** are written as JSON directly: moto's generic model-driven serialiser
  took 3.6 ms per record (a GetRecords of 1,000 records: 3.6 s). So are the DynamoDB data-plane
  responses (GetItem, Query, Scan, the writes, batches and transactions: their results are already
  the wire's AttributeValue maps): the same serialiser spent ~60 ms of a 100-item Query walking the
  botocore shapes, and every status poll and results page waited for it in moto's one line.
- **Query**: moto's Table.query starts from `all_items()`, every item of the table sorted by key,
  and keeps the queried partition's: each status poll and results page sorted the whole table (a
  5,000-image job's table: ~0.5 s per Query). A query of the table now starts from the window of
  its partition that its sort-key condition and start key can reach (`_key_window`), and one of an
  index from the items unsorted (moto sorts what it keeps either way). moto deep-copies each item a
  Query returns; its handlers only write them out, so the list is copied instead.
- **Dispatch**: moto lists a handler class's methods (`inspect.getmembers`) on every request; the
  list is made once per class.
- **Server dispatch**: moto's server lists its own package directory (a stat per entry) on every
  request to find the service; the list is now made once.
- **Instance tracking**: moto keeps a reference to every model object it ever built (for its web
  dashboard), so no item, item copy (one per UpdateItem), stream record or shard iterator was ever
  freed; the DynamoDB ones are no longer tracked.
- **Item size**: moto checks the 400 KB item limit by re-summing the whole item at every attribute
  it sets, quadratic in the number of attributes; this sums as it goes (same limit, same error).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import functools
import inspect
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

ITERATOR_TTL_S = 15 * 60
ITEM_SIZE_LIMIT = 405_000  # moto's own figure: AWS's 400 KB limit measured between 409 and 410 KB

_installed = False
_local = threading.local()  # `no_stream_records` is per thread: moto's server serves requests on threads


class _CopyWithoutTables:
    """Stands in for the `copy` module inside moto's DynamoDB models during one transaction."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, self._table_type) else copy.deepcopy(value, memo)


@contextlib.contextmanager
def no_stream_records() -> Iterator[None]:
    """Writes inside this block leave no stream record (a transaction's rollback is not a change)."""
    previous = getattr(_local, "suppressed", False)
    _local.suppressed = True
    try:
        yield
    finally:
        _local.suppressed = previous


def install() -> None:
    global _installed  # noqa: PLW0603 - patch once per process
    if _installed:
        return
    _install_transactions()
    _install_streams()
    _install_stream_responses()
    _install_dynamodb_responses()
    _install_partition_query()
    _install_method_names()
    _install_item_size()
    _install_server_dispatch()
    _untrack_dynamodb_models()
    _installed = True


# -- transactions -------------------------------------------------------------------------------
def _install_transactions() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    no_table_copies = _CopyWithoutTables(Table)

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[str, dict, dict | None]] = []
        stream_marks: dict[str, int] = {}
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if table.stream_shard is not None:
                stream_marks.setdefault(table.name, next_sequence(table.stream_shard))
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
            with no_stream_records():
                for table_name, key, attributes in reversed(saved):
                    if attributes is None:
                        self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
            # moto applied the transaction's writes one by one (each with its stream record) before
            # finding it cancelled; nothing read the stream meanwhile (one request at a time).
            for table_name, mark in stream_marks.items():
                shard = self.tables[table_name].stream_shard
                if shard is not None:
                    del shard.items[max(0, mark - first_sequence(shard)) :]
            raise
        finally:
            models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items


# -- streams ------------------------------------------------------------------------------------
def first_sequence(shard: Any) -> int:
    """Sequence number of `shard.items[0]` (the shard's start until records are dropped)."""
    return shard.__dict__.setdefault("_rp_first_sequence", shard.starting_sequence_number)


def next_sequence(shard: Any) -> int:
    return first_sequence(shard) + len(shard.items)


def _install_streams() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.core.utils import utcnow
    from moto.dynamodb.models.table import StreamRecord, StreamShard
    from moto.dynamodb.models.utilities import dynamo_json_dump
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator
    from moto.moto_api._internal import mock_random

    class LazyStreamRecord(StreamRecord):
        """moto's record, its size (a JSON dump of the record) computed when first read."""

        def __init__(self, table: Any, view: str, event_name: str, old: Any, new: Any, seq: int) -> None:  # noqa: PLR0917 - as moto calls it
            rec = old if old is not None else new
            keys = {table.hash_key_attr: rec.hash_key.to_json()}
            if table.range_key_attr is not None:
                keys[table.range_key_attr] = rec.range_key.to_json()
            data: dict[str, Any] = {
                "StreamViewType": view,
                "ApproximateCreationDateTime": utcnow(),
                "SequenceNumber": str(seq),
                "SizeBytes": 1,
                "Keys": keys,
            }
            # Images are copied now: moto updates a stored item in place on the next UpdateItem.
            if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
                data["NewImage"] = new.to_json()["Attributes"]
            if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
                data["OldImage"] = old.to_json()["Attributes"]
            self.record = {
                "eventID": mock_random.uuid4().hex,
                "eventName": event_name,
                "eventSource": "aws:dynamodb",
                "eventVersion": "1.0",
                "awsRegion": table.region_name,
                "dynamodb": data,
            }
            self.sized = False

        def to_json(self) -> dict[str, Any]:
            if not self.sized:
                self.record["dynamodb"]["SizeBytes"] = len(dynamo_json_dump(self.record["dynamodb"]))
                self.sized = True
            return self.record

    # A module global under its own name, so unread records pickle with moto's state (local_stack/state.py).
    LazyStreamRecord.__qualname__ = "LazyStreamRecord"
    globals()["LazyStreamRecord"] = LazyStreamRecord

    def add(self: StreamShard, old: Any, new: Any) -> None:
        if getattr(_local, "suppressed", False):
            return
        event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        view = self.table.stream_specification["StreamViewType"]
        self.items.append(LazyStreamRecord(self.table, view, event_name, old, new, next_sequence(self)))
        if self.table.lambda_event_source_mappings:  # moto's own Lambda mappings, as moto does them
            from moto.awslambda.utils import get_backend

            result = None
            for arn, esm in self.table.lambda_event_source_mappings.items():
                result = get_backend(self.account_id, arn.split(":")[3]).send_dynamodb_items(
                    arn, self.items, esm.event_source_arn
                )
            if result:
                self._rp_first_sequence = next_sequence(self)
                self.items.clear()

    def get(self: StreamShard, start: int, quantity: int) -> list[dict[str, Any]]:
        first = first_sequence(self)
        if start < first:
            raise JsonRESTError("TrimmedDataAccessException", f"records before {first} were read and dropped")
        drop = min(start - first, len(self.items))
        if drop:  # the reader has moved past them: nobody will ask for them again
            del self.items[:drop]
            self._rp_first_sequence = first + drop
        return [record.to_json() for record in self.items[:quantity]]

    StreamShard.add = add
    StreamShard.get = get

    original_iterator_init = ShardIterator.__init__

    def iterator_init(self: ShardIterator, backend: Any, shard: Any, kind: str, sequence: int | None = None) -> None:
        original_iterator_init(self, backend, shard, kind, sequence)
        if kind == "TRIM_HORIZON":
            self.sequence_number = first_sequence(shard)
        elif kind == "LATEST":
            self.sequence_number = next_sequence(shard)
        self.created = time.monotonic()

    ShardIterator.__init__ = iterator_init

    def get_records(self: DynamoDBStreamsBackend, iterator_arn: str, limit: int) -> dict[str, Any]:
        _expire_iterators(self.shard_iterators)
        iterator = self.shard_iterators.get(iterator_arn)
        if iterator is None:
            raise JsonRESTError("ExpiredIteratorException", "the shard iterator has expired or is unknown")
        result = iterator.get(limit)
        if not result["Records"]:
            # An empty read would store a new iterator at the same position on every idle poll: hand
            # back this one instead, its 15 minutes restarted.
            self.shard_iterators.pop(result["NextShardIterator"], None)
            del self.shard_iterators[iterator_arn]
            iterator.created = time.monotonic()
            self.shard_iterators[iterator_arn] = iterator
            result["NextShardIterator"] = iterator_arn
        return result

    DynamoDBStreamsBackend.get_records = get_records


def _expire_iterators(iterators: dict[str, Any]) -> None:
    # The dict is in creation order (a reused iterator is moved to the end): the oldest come first.
    deadline = time.monotonic() - ITERATOR_TTL_S
    while iterators:
        arn = next(iter(iterators))
        if getattr(iterators[arn], "created", 0.0) > deadline:
            return
        del iterators[arn]


def _install_stream_responses() -> None:
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    def get_records(self: DynamoDBStreamsHandler) -> str:
        limit = self._get_param("Limit") or 1000
        result = self.backend.get_records(self._get_param("ShardIterator"), limit)
        return json.dumps(result, default=_wire_json)

    DynamoDBStreamsHandler.get_records = get_records


# The results of these actions hold only the JSON protocol's own types (AttributeValue maps, counts,
# consumed capacity): json.dumps writes what moto's shape-driven serialiser writes (tests/local_stack).
FAST_JSON_ACTIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0"


def _install_dynamodb_responses() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.serialized

    def serialized(self: DynamoHandler, action_result: Any) -> Any:
        result = action_result.result
        if isinstance(result, Exception) or self._get_action() not in FAST_JSON_ACTIONS:
            return original(self, action_result)
        headers = {"Content-Type": DYNAMODB_CONTENT_TYPE, **self.response_headers}
        return 200, headers, json.dumps(_without_none(result), default=_wire_json)

    DynamoHandler.serialized = serialized


def _without_none(value: Any) -> Any:
    """The serialiser leaves out members that are None (an AttributeValue never holds one)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _install_partition_query() -> None:
    from moto.dynamodb.models import table as table_module
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items
    signature = inspect.signature(original_query)

    @functools.wraps(original_query)  # others bind its arguments by name (dynamodb_moto_store.py)
    def query(self: Table, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        previous = getattr(_local, "query", None)
        _local.query = (self, arguments)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _local.query = previous

    def all_items(self: Table) -> list:
        querying = getattr(_local, "query", None)
        if querying is None or querying[0] is not self:
            return original_all_items(self)  # scans and the rest: moto's order (by key)
        arguments = querying[1]
        hash_key, index_name = arguments.get("hash_key"), arguments.get("index_name")
        if not self.range_key_attr:
            return list(self.items.values())
        if index_name is None and hash_key is not None:
            # Every item whose hash key equals the queried one is in its partition (moto filters on it).
            partition = self.items.get(hash_key, {})  # .get: no empty partition added to the defaultdict
            window = _key_window(self, partition, arguments, DynamoType)
            return list(partition.values()) if window is None else window
        return [item for partition in self.items.values() for item in partition.values()]

    Table.query = query
    Table.all_items = all_items
    table_module.copy = _QueryResultsNotCopied()


class _QueryResultsNotCopied:
    """moto's table module's `copy`: Table.query deep-copies the items it returns, so that a caller
    changing them cannot change the table; moto's handlers only write them out (as the JSON of
    `_install_dynamodb_responses` does), so during a Query the list is copied, not each item."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any, memo: dict | None = None) -> Any:
        if getattr(_local, "query", None) is not None and type(value) is list:
            return list(value)
        return copy.deepcopy(value, memo)


# Sort-key conditions by the bounds they put on the key: (lower, upper) taken from the values.
_KEY_BOUNDS = {
    "=": (0, 0),
    "EQ": (0, 0),
    "<": (None, 0),
    "<=": (None, 0),
    "LT": (None, 0),
    "LE": (None, 0),
    ">": (0, None),
    ">=": (0, None),
    "GT": (0, None),
    "GE": (0, None),
    "BETWEEN": (0, 1),
    "BEGINS_WITH": (0, None),
}


def _key_window(table: Any, partition: dict, arguments: dict, dynamo_type: type) -> list | None:
    """The items of a table Query's partition that moto's loop can act on, in key order, or None
    (all of them). moto walks the whole partition for every page: it skips what comes before the
    ExclusiveStartKey one comparison at a time and tests the sort-key condition on every other
    item, long after the page is full (a 3,000-item partition read 250 at a time: 2/3 of its time).
    The window keeps the items within the condition's bounds (inclusive: moto still tests each) and
    at or after the start key, plus the next item beyond them, which moto may need for its Limit
    check (a full page followed by any item gets a LastEvaluatedKey). String sort keys only: their
    order is Python's string order, as in moto."""
    if (
        table.range_key_type != "S"
        or arguments.get("filter_kwargs")
        or len(arguments.get("range_key_conditions") or []) > 1
    ):
        return None
    lower = upper = None
    comparison = arguments.get("range_comparison")
    if comparison:
        bounds = _KEY_BOUNDS.get(comparison.upper())
        values = [value.value if value.type == "S" else None for value in arguments.get("range_objs") or []]
        if bounds is None or not values or None in values:
            return None
        lower = None if bounds[0] is None else values[bounds[0]]
        upper = None if bounds[1] is None else values[bounds[1]]
    forward = arguments.get("scan_index_forward", True) is not False
    start_key = arguments.get("exclusive_start_key")
    if start_key:
        start = (start_key.get(table.range_key_attr) or {}).get("S")
        hash_value = start_key.get(table.hash_key_attr)
        if start is None or hash_value is None or dynamo_type(hash_value) != arguments.get("hash_key"):
            return None
        if forward:
            lower = start if lower is None else max(lower, start)
        else:
            upper = start if upper is None else min(upper, start)
    ordered = sorted(partition.values(), key=lambda item: item.range_key.value)
    keys = [item.range_key.value for item in ordered]
    first = 0 if lower is None else bisect.bisect_left(keys, lower)
    end = len(ordered) if upper is None else bisect.bisect_right(keys, upper)
    if forward:
        end += 1  # the next item beyond, if any
    else:
        first = max(0, first - 1)
    return ordered[first:end]


def _install_method_names() -> None:
    from moto.core import responses

    responses.method_names_from_class = functools.cache(responses.method_names_from_class)


def _wire_json(value: Any) -> float | str:
    """What moto's serialiser makes of the JSON protocol's timestamps (moto's are naive UTC: epoch
    seconds) and blobs (binary attribute values: base64)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if not isinstance(value, datetime):
        raise TypeError(f"cannot serialise {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp(), 3)


# -- server dispatch -----------------------------------------------------------------------------
def _install_server_dispatch() -> None:
    from moto import backends

    original = backends.list_of_moto_modules
    # werkzeug_app asks `host in backends.list_of_moto_modules()` per request; moto's modules do not change.
    backends.list_of_moto_modules = functools.cache(lambda: frozenset(original()))


# -- item size ----------------------------------------------------------------------------------
def _install_item_size() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    def item_init(self: Item, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        size = 0
        for key, value in attrs.items():
            attribute = DynamoType(value)
            size += bytesize(key) + attribute.size()
            if size > ITEM_SIZE_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, attribute)  # LimitedSizeDict's own check re-sums the item

    Item.__init__ = item_init


# -- instance tracking ----------------------------------------------------------------------------
def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
    return object.__new__(cls)


def _untrack_dynamodb_models() -> None:
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import StreamRecord
    from moto.dynamodbstreams.models import ShardIterator

    # Built per write or per read: moto's BaseModel.__new__ appends each to `instances_tracked`.
    for model in (Item, StreamRecord, ShardIterator):
        model.__new__ = staticmethod(_untracked_new)
        model.instances_tracked.clear()
