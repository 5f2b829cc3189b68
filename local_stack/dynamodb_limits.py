"""A model of AWS DynamoDB's limits, so the local stack fails where AWS fails.

moto never conflicts, never throttles and has no per-partition limits. This model (pure Python,
thread-safe, clock injectable) decides which requests AWS would refuse; the adapters in
`dynamodb_limits_engine` and `dynamodb_limits_adapters` put it in front of moto. It is keyed only
on what DynamoDB knows: tables, GSIs, partition key values and item keys.

Modelled, with the public figures the defaults come from:

- Transaction commit window: a TransactWriteItems holds every item it touches from its admission
  until `commit_window_s` later (and never before moto has run it). Another TransactWriteItems, a
  plain write or a TransactGetItems touching a held item is refused (TransactionConflict). Default
  0.015 s: the commit time we measured on AWS (our issue). "Transaction conflict handling"
  (transaction-apis.html) lists the conflicting pairs; plain reads are not blocked.
- Partition throughput: per (table or index, partition key value) 1,000 WCU/s and 3,000 RCU/s
  ("each individual partition is limited to 1,000 write units per second and 3,000 read units per
  second", warm-throughput-scenarios.html; bp-partition-key-design.html). A token bucket per
  partition refills at that rate and holds `burst_s` (default 1 s) of it: a partition may take a
  full second's budget at once, never more.
- GSI writes: a base write that adds, changes or removes an item's entry in a GSI spends the index
  partition's budget (a key change is a delete and a put); when the index partition has none left
  the base write is throttled ("GSI back-pressure", gsi-throttling.html). Capacity units per item
  are computed in `dynamodb_items` (CapacityUnitCalculations.html) and `dynamodb_requests`.
- Table throughput (on-demand): a new on-demand table or GSI serves 4,000 WCU/s and 12,000 RCU/s
  ("New on-demand tables will be able to sustain up to 4,000 writes per second and 12,000 reads per
  second", pre-warming-on-demand-capacity-mode.html), or its `WarmThroughput` when higher, and "up
  to double the previous peak" where a new peak needs up to 30 minutes to count. The ramp modelled:
  capacity = max(start, 2 x the highest one-second consumption seen at least `ramp_delay_s` ago),
  capped by the per-table quota of 40,000 WCU/s and 40,000 RCU/s (ServiceQuotas.html, default
  account quota).
- Time scale F: every per-second rate is divided by F and every duration (commit window, ramp
  delay, the one-second peak window) multiplied by F, so a model run F times slower keeps the same
  contention (rate x duration). Burst sizes are unit counts and stay as they are.

Not modelled: provisioned-mode tables are treated as on-demand ones; LSIs; adaptive capacity
splitting a hot partition key's items across partitions (AWS never splits a single key value).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

Clock = Callable[[], float]
ThrottleLimit = Literal["KeyRange", "AccountLimit"]
HoldKind = Literal["transaction", "write"]

COUNTER_NAMES = (
    "transaction_conflicts",  # TransactWriteItems / TransactGetItems cancelled with TransactionConflict
    "plain_write_conflicts",  # PutItem/UpdateItem/DeleteItem/BatchWriteItem refused: item in a transaction
    "throttled_transactions",  # TransactWriteItems / TransactGetItems cancelled with ThrottlingError
    "throttled_plain_operations",  # ProvisionedThroughputExceededException answers
    "throttled_by_gsi",  # refusals (any of the two above) caused by a GSI's budget
    "unprocessed_batch_items",  # BatchWriteItem / BatchGetItem items handed back unprocessed
    "validation_refusals",  # ValidationException answers of the model (sizes, counts, duplicates)
)


@dataclass(frozen=True)
class LimitsConfig:
    commit_window_s: float = 0.015
    partition_write_units: float = 1000.0
    partition_read_units: float = 3000.0
    burst_s: float = 1.0
    table_initial_write_units: float = 4000.0
    table_initial_read_units: float = 12000.0
    table_max_write_units: float = 40000.0
    table_max_read_units: float = 40000.0
    ramp_delay_s: float = 1800.0
    time_scale: float = 1.0
    hottest_partitions: int = 10

    def describe(self) -> str:
        return (
            f"commit window {self.commit_window_s * 1000:g} ms, partition {self.partition_write_units:g} WCU/s "
            f"{self.partition_read_units:g} RCU/s, time scale {self.time_scale:g}"
        )


@dataclass(frozen=True)
class Charge:
    """Capacity one request spends on one partition of a table or of one of its GSIs."""

    table: str
    index: str | None
    partition: str
    units: float
    write: bool
    item: int = 0  # which item of the request spends it (for cancellation reasons)
    start_units: float | None = None  # the table's or index's WarmThroughput, if any


@dataclass(frozen=True)
class Throttle:
    charge: Charge
    limit: ThrottleLimit


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


@dataclass
class _TableLevel:
    bucket: _Bucket
    window_start: float
    window_units: float = 0.0
    peaks: list[tuple[float, float]] = field(default_factory=list)  # (window end, units), rising


@dataclass
class _Hold:
    kind: HoldKind
    held_until: float  # a transaction's window end; a plain write holds only while in flight
    in_flight: bool = True

    def active(self, now: float) -> bool:
        return self.in_flight or now < self.held_until


@dataclass
class HoldToken:
    items: tuple[str, ...]
    hold: _Hold


class DynamoDBLimits:
    def __init__(self, config: LimitsConfig | None = None, clock: Clock = time.monotonic) -> None:
        self.config = config or LimitsConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._holds: dict[str, list[_Hold]] = {}
        self._partitions: dict[tuple[str, str | None, str, bool], _Bucket] = {}
        self._tables: dict[tuple[str, str | None, bool], _TableLevel] = {}
        self._calls = 0
        self.reset()

    # -- time scale ----------------------------------------------------------------------------
    def _rate(self, per_second: float) -> float:
        return per_second / self.config.time_scale

    def _duration(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    # -- transaction holds ---------------------------------------------------------------------
    def _held(self, item: str, now: float, kinds: Iterable[HoldKind]) -> bool:
        holds = self._holds.get(item)
        if not holds:
            return False
        holds[:] = [hold for hold in holds if hold.active(now)]
        if not holds:
            del self._holds[item]
            return False
        return any(hold.kind in kinds for hold in holds)

    def _hold(self, items: Sequence[str], kind: HoldKind, now: float) -> HoldToken:
        until = now + self._duration(self.config.commit_window_s) if kind == "transaction" else now
        hold = _Hold(kind, until)
        for item in items:
            self._holds.setdefault(item, []).append(hold)
        return HoldToken(tuple(items), hold)

    def begin_transaction(self, items: Sequence[str]) -> tuple[HoldToken | None, list[int]]:
        """A TransactWriteItems is admitted: hold its items, or name those another one holds."""
        with self._lock:
            now = self._clock()
            conflicts = [i for i, item in enumerate(items) if self._held(item, now, ("transaction",))]
            return (None, conflicts) if conflicts else (self._hold(items, "transaction", now), [])

    def begin_write(self, items: Sequence[str]) -> tuple[HoldToken | None, list[int]]:
        """A plain write is admitted unless a transaction holds one of its items; while it runs, a
        TransactGetItems of the item conflicts with it."""
        with self._lock:
            now = self._clock()
            conflicts = [i for i, item in enumerate(items) if self._held(item, now, ("transaction",))]
            return (None, conflicts) if conflicts else (self._hold(items, "write", now), [])

    def transaction_read_conflicts(self, items: Sequence[str]) -> list[int]:
        """Items of a TransactGetItems that an ongoing transaction or write holds."""
        with self._lock:
            now = self._clock()
            return [i for i, item in enumerate(items) if self._held(item, now, ("transaction", "write"))]

    def finish(self, token: HoldToken | None) -> None:
        """The request has run: a plain write lets go now, a transaction at its window's end."""
        if token is not None:
            with self._lock:
                token.hold.held_until = max(token.hold.held_until, self._clock())
                token.hold.in_flight = False

    def cancel(self, token: HoldToken | None) -> None:
        """The request was refused after all: it holds nothing."""
        if token is not None:
            with self._lock:
                token.hold.in_flight = False
                token.hold.held_until = float("-inf")

    # -- throughput ----------------------------------------------------------------------------
    def _partition_bucket(self, charge: Charge, now: float) -> tuple[_Bucket, float]:
        per_second = self.config.partition_write_units if charge.write else self.config.partition_read_units
        capacity = per_second * self.config.burst_s
        key = (charge.table, charge.index, charge.partition, charge.write)
        bucket = self._partitions.get(key)
        if bucket is None:
            bucket = self._partitions[key] = _Bucket(capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated_at) * self._rate(per_second))
        bucket.updated_at = now
        return bucket, capacity

    def _table_capacity(self, level: _TableLevel, charge: Charge, now: float) -> float:
        initial = self.config.table_initial_write_units if charge.write else self.config.table_initial_read_units
        quota = self.config.table_max_write_units if charge.write else self.config.table_max_read_units
        cutoff = now - self._duration(self.config.ramp_delay_s)
        previous_peak = max((units for end, units in level.peaks if end <= cutoff), default=0.0)
        return min(quota, max(initial, charge.start_units or 0.0, 2 * previous_peak))

    def _table_level(self, charge: Charge, now: float) -> tuple[_TableLevel, float]:
        key = (charge.table, charge.index, charge.write)
        level = self._tables.get(key)
        if level is None:
            level = self._tables[key] = _TableLevel(_Bucket(float("inf"), now), now)
        window = self._duration(1.0)
        if now - level.window_start >= window:  # a one-second window closed: is it a new peak?
            if level.window_units > (level.peaks[-1][1] if level.peaks else 0.0):
                level.peaks.append((level.window_start + window, level.window_units))
            level.window_start, level.window_units = now, 0.0
        per_second = self._table_capacity(level, charge, now)
        capacity = per_second * self.config.burst_s
        bucket = level.bucket
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated_at) * self._rate(per_second))
        bucket.updated_at = now
        return level, capacity

    def try_consume(self, charges: Sequence[Charge]) -> list[Throttle]:
        """All of `charges` or none: the throttles that refuse them (empty when they are spent).
        A bucket that is full admits any single request, however large (it then runs a debt)."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            need: dict[tuple, float] = {}
            for charge in charges:
                need[("p", charge.table, charge.index, charge.partition, charge.write)] = (
                    need.get(("p", charge.table, charge.index, charge.partition, charge.write), 0.0) + charge.units
                )
                need[("t", charge.table, charge.index, charge.write)] = (
                    need.get(("t", charge.table, charge.index, charge.write), 0.0) + charge.units
                )
            throttles: list[Throttle] = []
            for charge in charges:
                bucket, capacity = self._partition_bucket(charge, now)
                wanted = need[("p", charge.table, charge.index, charge.partition, charge.write)]
                if bucket.tokens < min(wanted, capacity):
                    throttles.append(Throttle(charge, "KeyRange"))
                    continue
                level, capacity = self._table_level(charge, now)
                wanted = need[("t", charge.table, charge.index, charge.write)]
                if level.bucket.tokens < min(wanted, capacity):
                    quota = self.config.table_max_write_units if charge.write else self.config.table_max_read_units
                    at_quota = capacity >= quota * self.config.burst_s
                    throttles.append(Throttle(charge, "AccountLimit" if at_quota else "KeyRange"))
            if not throttles:
                self._spend(charges, now)
            return throttles

    def spend(self, charges: Sequence[Charge]) -> None:
        """Spend without asking (what a request read turned out to cost, or a correction, which
        may be negative): buckets may run a debt that later requests wait out."""
        with self._lock:
            self._spend(charges, self._clock())

    def _spend(self, charges: Sequence[Charge], now: float) -> None:
        for charge in charges:
            bucket, _ = self._partition_bucket(charge, now)
            bucket.tokens -= charge.units
            level, _ = self._table_level(charge, now)
            level.bucket.tokens -= charge.units
            level.window_units += charge.units
            kind = "write_units" if charge.write else "read_units"
            table = self._consumed.setdefault(charge.table, {"write_units": 0.0, "read_units": 0.0, "indexes": {}})
            target = table
            if charge.index:
                target = table["indexes"].setdefault(charge.index, {"write_units": 0.0, "read_units": 0.0})
            target[kind] += charge.units
            hot = self._partition_totals.setdefault((charge.table, charge.index, charge.partition), [0.0, 0.0])
            hot[0 if charge.write else 1] += charge.units

    def _sweep(self, now: float) -> None:
        """Forget idle state now and then, so a long run's memory stays bounded."""
        self._calls += 1
        if self._calls % 2000:
            return
        for item in [item for item, holds in self._holds.items() if not any(h.active(now) for h in holds)]:
            del self._holds[item]
        for key, bucket in list(self._partitions.items()):
            per_second = self.config.partition_write_units if key[3] else self.config.partition_read_units
            if bucket.tokens + (now - bucket.updated_at) * self._rate(per_second) >= per_second * self.config.burst_s:
                del self._partitions[key]

    # -- counters ------------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        if name not in self._counters:
            raise KeyError(name)
        with self._lock:
            self._counters[name] += n

    def reset(self) -> None:
        """Counters, consumption, buckets and holds back to a new table's."""
        with self._lock:
            self._counters = dict.fromkeys(COUNTER_NAMES, 0)
            self._consumed: dict[str, dict] = {}
            self._partition_totals: dict[tuple[str, str | None, str], list[float]] = {}
            self._holds.clear()
            self._partitions.clear()
            self._tables.clear()

    def snapshot(self) -> dict:
        """Counters, consumed WCU/RCU per table and per index, and the hottest partitions."""
        with self._lock:
            hottest = sorted(self._partition_totals.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))
            return {
                "enabled": True,
                "config": asdict(self.config),
                "counters": dict(self._counters),
                "consumed": {
                    name: {**totals, "indexes": {k: dict(v) for k, v in totals["indexes"].items()}}
                    for name, totals in self._consumed.items()
                },
                "hottest_partitions": [
                    {"table": table, "index": index, "partition": partition, "write_units": w, "read_units": r}
                    for (table, index, partition), (w, r) in hottest[: self.config.hottest_partitions]
                ],
            }
