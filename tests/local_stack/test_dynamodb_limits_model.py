"""The DynamoDB limits model on its own: sizes, capacity arithmetic, commit window, budgets."""

from __future__ import annotations

import pytest

from local_stack.dynamodb_items import TableSchema, item_size, number_size, read_units, value_size, write_units
from local_stack.dynamodb_limits import Charge, DynamoDBLimits, LimitsConfig
from local_stack.dynamodb_requests import ItemOp, Refusal, check_put_sizes, item_ops, query_partition, write_charges


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


DESCRIPTION = {
    "TableName": "t",
    "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "ByStatus",
            "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "ByStore",
            "KeySchema": [{"AttributeName": "store", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n"]},
        },
    ],
    "WarmThroughput": {"ReadUnitsPerSecond": 12000, "WriteUnitsPerSecond": 8000},
}
SCHEMA = TableSchema.from_description(DESCRIPTION)


def s(v: str) -> dict:
    return {"S": v}


def charge(units: float, partition: str = "p", index: str | None = None, write: bool = True) -> Charge:
    return Charge("t", index, partition, units, write)


# -- sizes and units -----------------------------------------------------------------------------
def test_item_sizes_follow_dynamodbs_rules():
    assert value_size(s("héllo")) == 6  # UTF-8 bytes
    assert number_size("123") == 3 and number_size("1000") == 2 and number_size("0.0050") == 2
    assert number_size("-12345678901234567890") == 11
    assert value_size({"B": "AAEC"}) == 3  # base64 on the wire, raw bytes counted
    assert value_size({"BOOL": True}) == 1 and value_size({"NULL": True}) == 1
    assert value_size({"SS": ["ab", "c"]}) == 3
    assert value_size({"L": [s("ab"), {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": s("ab")}}) == 3 + 1 + 1 + 2
    assert value_size({"L": []}) == 3
    assert item_size({"pk": s("job"), "n": {"N": "42"}}) == (2 + 3) + (1 + 2)


def test_capacity_units_round_up_per_started_kilobyte():
    assert write_units(0) == 1 and write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(4097, consistent=False) == 1 and read_units(10, consistent=False) == 0.5


def test_write_charges_take_the_larger_size_doubled_in_transactions_and_count_gsi_entries():
    key = {"pk": s("job"), "sk": s("JOB")}
    op = ItemOp(SCHEMA, key, "update", {})
    before = {**key, "big": s("x" * 1500), "status": s("ongoing")}
    after = {**key, "status": s("done")}  # smaller, and moves in ByStatus: delete + put
    charges = write_charges(op, 0, before, after, transaction=True)
    base = [c for c in charges if c.index is None]
    assert [c.units for c in base] == [4]  # 2 KB before, x2 for prepare + commit
    by_status = sorted((c.partition, c.units) for c in charges if c.index == "ByStatus")
    assert by_status == [('{"S":"done"}', 1), ('{"S":"ongoing"}', 1)]
    # A change of a non-key attribute only: no index entry changes (KEYS_ONLY), one write.
    same_status = write_charges(op, 0, before, {**before, "big": s("y")}, transaction=False)
    assert [(c.index, c.units) for c in same_status] == [(None, 2)]
    # INCLUDE projections change with their attributes.
    listed = {**key, "store": s("S1"), "at": s("2024"), "n": {"N": "1"}}
    moved = write_charges(op, 0, listed, {**listed, "n": {"N": "2"}}, transaction=False)
    assert [(c.index, c.partition, c.units) for c in moved] == [(None, '{"S":"job"}', 1), ("ByStore", '{"S":"S1"}', 1)]


def test_the_schema_is_read_from_describe_table():
    assert (SCHEMA.hash_key, SCHEMA.range_key, SCHEMA.on_demand) == ("pk", "sk", True)
    assert (SCHEMA.warm_read_units, SCHEMA.warm_write_units) == (12000, 8000)
    assert SCHEMA.index_arn("ByStatus") == "arn:aws:dynamodb:us-east-1:123456789012:table/t/index/ByStatus"
    entry = SCHEMA.index_entry(SCHEMA.indexes[1], {"pk": s("a"), "sk": s("b"), "store": s("S"), "x": s("y")})
    assert entry is None  # no `at`: not in ByStore
    item = {"pk": s("a"), "sk": s("b"), "store": s("S"), "at": s("1"), "n": {"N": "1"}, "x": s("y")}
    assert set(SCHEMA.index_entry(SCHEMA.indexes[1], item)) == {"pk", "sk", "store", "at", "n"}


def test_query_partition_is_read_from_the_key_condition():
    body = {
        "TableName": "t",
        "IndexName": "ByStore",
        "KeyConditionExpression": "#s = :s AND begins_with(#a, :a)",
        "ExpressionAttributeNames": {"#s": "store", "#a": "at"},
        "ExpressionAttributeValues": {":s": s("S1"), ":a": s("2024")},
    }
    assert query_partition(body, SCHEMA) == ("ByStore", '{"S":"S1"}')


# -- shape checks --------------------------------------------------------------------------------
def put(pk: str, sk: str = "x", **extra) -> dict:
    return {"Put": {"TableName": "t", "Item": {"pk": s(pk), "sk": s(sk), **extra}}}


def test_shape_checks_refuse_what_aws_refuses():
    def schema_of(name: str) -> TableSchema:
        return SCHEMA

    with pytest.raises(Refusal, match="multiple operations on one item") as err:
        item_ops("TransactWriteItems", {"TransactItems": [put("a"), put("a")]}, schema_of)
    assert err.value.code == "ValidationException"
    with pytest.raises(Refusal, match="less than or equal to 100"):
        item_ops("TransactWriteItems", {"TransactItems": [put(str(i)) for i in range(101)]}, schema_of)
    many = {"RequestItems": {"t": [{"PutRequest": {"Item": {"pk": s(str(i)), "sk": s("x")}}} for i in range(26)]}}
    with pytest.raises(Refusal, match="BatchWriteItem"):
        item_ops("BatchWriteItem", many, schema_of)
    keys = {"RequestItems": {"t": {"Keys": [{"pk": s(str(i)), "sk": s("x")} for i in range(101)]}}}
    with pytest.raises(Refusal, match="BatchGetItem"):
        item_ops("BatchGetItem", keys, schema_of)
    big = item_ops("TransactWriteItems", {"TransactItems": [put("a", blob=s("x" * 400 * 1024))]}, schema_of)
    with pytest.raises(Refusal, match="Item size has exceeded the maximum allowed size"):
        check_put_sizes(big, transaction=True)
    near = [put(str(i), blob=s("x" * 390 * 1024)) for i in range(11)]  # 11 x 390 KB > 4 MB
    with pytest.raises(Refusal, match="Transaction request size"):
        check_put_sizes(item_ops("TransactWriteItems", {"TransactItems": near}, schema_of), transaction=True)


# -- commit window -------------------------------------------------------------------------------
def test_a_transaction_holds_its_items_for_the_commit_window():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(commit_window_s=0.015), clock)
    token, conflicts = limits.begin_transaction(["a", "b"])
    assert token and not conflicts
    limits.finish(token)  # moto ran it at once; the window still holds
    clock.now += 0.010
    assert limits.begin_transaction(["c", "b"]) == (None, [1])
    assert limits.begin_write(["a"]) == (None, [0])
    assert limits.transaction_read_conflicts(["x", "a"]) == [1]
    clock.now += 0.006  # window over
    assert limits.begin_transaction(["b"])[1] == []


def test_a_transaction_holds_until_it_ran_even_past_its_window_and_a_refused_one_holds_nothing():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(commit_window_s=0.015), clock)
    slow, _ = limits.begin_transaction(["a"])
    clock.now += 1.0  # still waiting for moto's lock
    assert limits.begin_transaction(["a"])[1] == [0]
    limits.finish(slow)
    clock.now += 0.001
    refused, _ = limits.begin_transaction(["a"])
    limits.cancel(refused)
    limits.finish(refused)
    assert limits.begin_transaction(["a"])[1] == []


def test_plain_writes_block_transactional_reads_only_while_in_flight():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(), clock)
    write, _ = limits.begin_write(["a"])
    other, conflicts = limits.begin_write(["a"])
    assert conflicts == []  # plain writes do not conflict with each other
    assert limits.transaction_read_conflicts(["a"]) == [0]
    limits.finish(write)
    limits.finish(other)
    clock.now += 0.0001
    assert limits.transaction_read_conflicts(["a"]) == []
    assert limits.begin_transaction(["a"])[1] == []  # a finished plain write holds nothing against transactions


# -- throughput ----------------------------------------------------------------------------------
def test_a_partition_takes_1000_wcu_per_second_then_throttles_and_refills():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(), clock)
    for _ in range(1000):
        assert limits.try_consume([charge(1)]) == []
    refused = limits.try_consume([charge(1)])
    assert [(t.limit, t.charge.partition) for t in refused] == [("KeyRange", "p")]
    assert limits.try_consume([charge(1, partition="other")]) == []  # other partitions unaffected
    assert limits.try_consume([charge(3000, write=False)]) == []  # reads have their own 3,000 RCU
    clock.now += 0.5
    assert limits.try_consume([charge(500)]) == []
    assert limits.try_consume([charge(1)])
    assert limits.snapshot()["counters"]["throttled_plain_operations"] == 0  # the engine counts refusals


def test_a_refused_group_spends_nothing():
    limits = DynamoDBLimits(LimitsConfig(partition_write_units=10), FakeClock())
    assert limits.try_consume([charge(9, "a")]) == []
    assert limits.try_consume([charge(5, "b"), charge(5, "a")])  # a is short: b is not spent either
    assert limits.try_consume([charge(10, "b")]) == []


def test_an_exhausted_gsi_partition_throttles_the_base_write():
    limits = DynamoDBLimits(LimitsConfig(), FakeClock())
    assert limits.try_consume([charge(1000, "ongoing", index="ByStatus")]) == []
    base_write = [charge(1, "job-7"), charge(1, "ongoing", index="ByStatus")]
    refused = limits.try_consume(base_write)
    assert [(t.charge.index, t.limit) for t in refused] == [("ByStatus", "KeyRange")]
    assert limits.try_consume([charge(1, "job-7")]) == []  # the base partition itself had budget


def test_table_level_starts_at_the_on_demand_initial_throughput_or_warm_throughput():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(), clock)
    for p in range(4):
        assert limits.try_consume([charge(1000, f"p{p}")]) == []
    refused = limits.try_consume([charge(1, "p5")])
    assert [t.limit for t in refused] == ["KeyRange"]  # 4,000 WCU/s for a new table
    warm = DynamoDBLimits(LimitsConfig(), clock)
    spent = [Charge("t", None, f"p{p}", 1000, True, start_units=8000) for p in range(8)]
    assert all(warm.try_consume([c]) == [] for c in spent)


def test_table_capacity_doubles_the_previous_peak_after_the_ramp_delay_up_to_the_quota():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(ramp_delay_s=60, table_max_write_units=10000), clock)
    for p in range(4):
        limits.try_consume([charge(1000, f"p{p}")])  # a 4,000 WCU second
    clock.now += 61
    for p in range(8):
        assert limits.try_consume([charge(1000, f"q{p}")]) == [], p  # 2 x 4,000 now
    clock.now += 61
    for p in range(10):
        assert limits.try_consume([charge(1000, f"r{p}")]) == [], p  # 16,000, capped at 10,000
    assert [t.limit for t in limits.try_consume([charge(1, "r99")])] == ["AccountLimit"]


def test_time_scale_divides_budgets_and_stretches_the_commit_window():
    clock = FakeClock()
    limits = DynamoDBLimits(LimitsConfig(time_scale=10), clock)
    for _ in range(10):
        assert limits.try_consume([charge(100)]) == []  # the burst is still 1,000 units
    assert limits.try_consume([charge(1)])
    clock.now += 1.0
    assert limits.try_consume([charge(100)]) == []  # refills at 100 WCU/s
    assert limits.try_consume([charge(1)])
    token, _ = limits.begin_transaction(["a"])
    limits.finish(token)
    clock.now += 0.1
    assert limits.begin_transaction(["a"])[1] == [0]  # 15 ms x 10
    clock.now += 0.06
    assert limits.begin_transaction(["a"])[1] == []


def test_snapshot_reports_consumption_per_table_and_index_and_the_hottest_partitions():
    limits = DynamoDBLimits(LimitsConfig(hottest_partitions=1), FakeClock())
    limits.try_consume([charge(3, "hot"), charge(1, "hot", index="ByStatus")])
    limits.try_consume([charge(1, "cold")])
    limits.spend([charge(2.5, "hot", write=False)])
    limits.count("unprocessed_batch_items", 2)
    snapshot = limits.snapshot()
    assert snapshot["consumed"]["t"] == {
        "write_units": 4.0,
        "read_units": 2.5,
        "indexes": {"ByStatus": {"write_units": 1.0, "read_units": 0.0}},
    }
    assert snapshot["hottest_partitions"] == [
        {"table": "t", "index": None, "partition": "hot", "write_units": 3.0, "read_units": 2.5}
    ]
    assert snapshot["counters"]["unprocessed_batch_items"] == 2
    limits.reset()
    assert limits.snapshot()["consumed"] == {} and not any(limits.snapshot()["counters"].values())
