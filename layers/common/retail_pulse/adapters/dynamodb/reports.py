"""Visit indexes and report counters, in the jobs table.

Visit indexes (two sparse GSIs, only on result items of stores in the Store Master):
  VisitsByStore  visit_store = <store_id>  visit_store_sk = <visit_time_utc>#<job_id>#<index:08>
  VisitsByArea   visit_area  = <area>      visit_area_sk  = <visit_time_utc>#<store_id>#<job_id>#<index:08>
`visit_time_utc` is the canonical 24-character form (2024-03-15T10:00:00.000Z), so a range of
times is one key condition. Result items expire with their job (TTL), and so do their entries.

Report counters (no TTL: cumulative, they outlive the jobs that fed them):
  area shard   pk=REPORT#<area>  sk=AREA#<shard:02>               shard 0..AREA_SHARDS-1
  store shard  pk=REPORT#<area>  sk=STORE#<store_id>#<shard:02>   shard 0..STORE_SHARDS-1
each holding images, failed, visits, duration_ms (sums) and days (string set of visit dates).
process_image ADDs them in the batch's own TransactWriteItems, so they move exactly once per
image. Many batches run at once and transactions on one item conflict, so each batch writes one
shard, chosen by a hash of its first (job id, index); a report sums the shards.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config

from retail_pulse.adapters.dynamodb.items import from_item as _de
from retail_pulse.adapters.dynamodb.items import to_item as _ser
from retail_pulse.domain.models import ImageResult, ReportCounters, VisitImage

STORE_INDEX = "VisitsByStore"
AREA_INDEX = "VisitsByArea"
AREA_SHARDS = 10
STORE_SHARDS = 4
REPORT_PREFIX = "REPORT#"
AREA_SK_PREFIX = "AREA#"
STORE_SK_PREFIX = "STORE#"
TIME_MIN = "0001-01-01T00:00:00.000Z"
TIME_MAX = "9999-12-31T23:59:59.999Z"

_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
_STORE_CURSOR = re.compile(rf"^({_TIME})#([^#]+)#(\d{{8}})$")
_AREA_CURSOR = re.compile(rf"^({_TIME})#(.+)#([^#]+)#(\d{{8}})$")


def report_pk(area: str) -> str:
    return f"{REPORT_PREFIX}{area}"


def batch_shard(results: Sequence[ImageResult]) -> int:
    """A number spreading concurrent batches over the shards (any choice keeps counts exact)."""
    first = min((r.task.job_id, r.task.index) for r in results)
    return int.from_bytes(hashlib.sha256(f"{first[0]}#{first[1]}".encode()).digest()[:8], "big")


def visit_index_attributes(r: ImageResult) -> dict[str, Any]:
    """The GSI keys of a result item: only for stores with an area, so both indexes are sparse."""
    t = r.task
    if not t.area or not t.visit_time_utc:
        return {}
    tail = f"{t.job_id}#{t.index:08d}"
    return {
        "area": t.area,
        "visit_time_utc": t.visit_time_utc,
        "visit_store": t.store_id,
        "visit_store_sk": f"{t.visit_time_utc}#{tail}",
        "visit_area": t.area,
        "visit_area_sk": f"{t.visit_time_utc}#{t.store_id}#{tail}",
    }


def report_updates(table_name: str, results: Sequence[ImageResult]) -> list[tuple[dict, str]]:
    """TransactWriteItems Updates ADDing `results` to their area's and store's report shards."""
    counted = [r for r in results if r.task.area]
    if not counted:
        return []
    shard = batch_shard(counted)
    areas: dict[str, ReportCounters] = defaultdict(ReportCounters)
    stores: dict[tuple[str, str], ReportCounters] = defaultdict(ReportCounters)
    for r in counted:
        one = ReportCounters(
            images=1,
            failed=int(r.status == "failed"),
            visits=int(r.task.first_in_visit),
            duration_ms=r.duration_ms or 0,
            days={r.task.visit_time_utc[:10]} if r.task.visit_time_utc else set(),
        )
        areas[r.task.area].add(one)
        stores[(r.task.area, r.task.store_id)].add(one)
    updates = []
    for area, c in sorted(areas.items()):
        sk = f"{AREA_SK_PREFIX}{shard % AREA_SHARDS:02d}"
        updates.append((_counter_update(table_name, report_pk(area), sk, c, {"area": area}), f"report {area} {sk}"))
    for (area, store_id), c in sorted(stores.items()):
        sk = f"{STORE_SK_PREFIX}{store_id}#{shard % STORE_SHARDS:02d}"
        fields = {"area": area, "store_id": store_id}
        updates.append((_counter_update(table_name, report_pk(area), sk, c, fields), f"report {area} {sk}"))
    return updates


def _counter_update(table_name: str, pk: str, sk: str, c: ReportCounters, fields: dict[str, str]) -> dict:
    # Every attribute through a name placeholder: no DynamoDB reserved word can break it.
    adds = {"images": c.images, "failed": c.failed, "visits": c.visits, "duration_ms": c.duration_ms}
    if c.days:
        adds["days"] = set(c.days)
    names = {f"#{n}": n for n in [*fields, *adds]}
    values = {f":{n}": v for n, v in [*fields.items(), *adds.items()]}
    sets = ", ".join(f"#{n} = :{n}" for n in fields)
    add = ", ".join(f"#{n} :{n}" for n in adds)
    return {
        "Update": {
            "TableName": table_name,
            "Key": _ser({"pk": pk, "sk": sk}),
            "UpdateExpression": f"SET {sets} ADD {add}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _ser(values),
        }
    }


class DynamoReportRepository:
    """Reads of the visit indexes and report counters."""

    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb", config=Config(retries={"mode": "standard"}))

    # -- visits ---------------------------------------------------------------------------
    def page_visits(
        self,
        *,
        area: str,
        store_id: str | None,
        start: str | None,
        end: str | None,
        after: str | None,
        limit: int,
    ) -> tuple[list[VisitImage], str | None]:
        """Ended images of a store (or of an area) with start <= visit_time_utc <= end, in time order.

        Returns at most `limit` images and a cursor to pass as `after` for the next page (None on
        the last page). Raises ValueError on a cursor this query did not hand out.
        """
        if store_id is not None:
            index, pk_name, sk_name, pk_value, cursor_re = (
                STORE_INDEX,
                "visit_store",
                "visit_store_sk",
                store_id,
                _STORE_CURSOR,
            )
        else:
            index, pk_name, sk_name, pk_value, cursor_re = AREA_INDEX, "visit_area", "visit_area_sk", area, _AREA_CURSOR
        # Sort keys are "<24-char time>#...": "$" sorts right after "#", so "<end>$" bounds time <= end.
        low, high = start or TIME_MIN, f"{end or TIME_MAX}$"
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :low AND :high",
            "ExpressionAttributeNames": {"#pk": pk_name, "#sk": sk_name, "#status": "status"},
            "ExpressionAttributeValues": _ser({":pk": pk_value, ":low": low, ":high": high}),
            "ProjectionExpression": "#sk, store_id, visit_time_utc, #status, perimeter",
        }
        if after is not None:
            match = cursor_re.match(after)
            if not match or not low <= after <= high:
                raise ValueError("cursor not from this query")
            job_id, index_digits = match.group(match.lastindex - 1), match.group(match.lastindex)
            kwargs["ExclusiveStartKey"] = _ser(
                {"pk": f"JOB#{job_id}", "sk": f"IMG#{index_digits}", pk_name: pk_value, sk_name: after}
            )
        items: list[dict] = []
        while len(items) <= limit:
            resp = self.client.query(Limit=limit + 1 - len(items), **kwargs)
            items += [_de(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        page = items[:limit]
        cursor = page[-1][sk_name] if len(items) > limit else None
        visits = [
            VisitImage(
                store_id=i["store_id"],
                visit_time_utc=i["visit_time_utc"],
                status=i["status"],
                perimeter=i.get("perimeter"),
            )
            for i in page
        ]
        return visits, cursor

    # -- reports --------------------------------------------------------------------------
    def area_counters(self, area: str) -> ReportCounters:
        total = ReportCounters()
        for item in self._query_report(area, AREA_SK_PREFIX):
            total.add(_counters(item))
        return total

    def store_counters(self, area: str, store_id: str | None = None) -> dict[str, ReportCounters]:
        """Store id -> counters, for the stores of `area` (or just `store_id`) with anything counted."""
        prefix = f"{STORE_SK_PREFIX}{store_id}#" if store_id is not None else STORE_SK_PREFIX
        out: dict[str, ReportCounters] = defaultdict(ReportCounters)
        for item in self._query_report(area, prefix):
            out[item["store_id"]].add(_counters(item))
        return dict(out)

    def _query_report(self, area: str, prefix: str) -> list[dict]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _ser({":pk": report_pk(area), ":prefix": prefix}),
        }
        out: list[dict] = []
        while True:
            resp = self.client.query(**kwargs)
            out += [_de(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _counters(item: dict) -> ReportCounters:
    return ReportCounters(
        images=int(item.get("images", 0)),
        failed=int(item.get("failed", 0)),
        visits=int(item.get("visits", 0)),
        duration_ms=int(item.get("duration_ms", 0)),
        days=set(item.get("days") or ()),
    )
