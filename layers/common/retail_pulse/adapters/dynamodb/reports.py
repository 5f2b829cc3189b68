"""Reads of the visit index and of the report counters (both written by the stream consumer and by
result writes; see keys.py for where they live).

Visit index (one sparse GSI, only on results of stores in the Store Master):
  VisitsByArea  visit_area = <area>#<shard>
                visit_area_sk = <client>#<store_id>#<visit_time_utc>#<job_id>#<index:08>
An area's stores spread over VISIT_SHARDS partitions (by store id), so one area's images never
share one partition's write budget; a store lives in one of them. A client's images are one key
range of the partition (its own prefix), a store's within it in visit-time order: a client's query
reads only its own range; an admin's reads the whole partition (a store: filtered, client by client).
Images of jobs from before clients have no prefix: only an admin's query meets them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from retail_pulse.adapters.dynamodb.items import to_item
from retail_pulse.adapters.dynamodb.keys import (
    AREA_SK,
    CLIENTS_PK,
    REPORT_SHARDS,
    STORE_SK_PREFIX,
    VISIT_SHARDS,
    report_pk,
    result_key,
    store_sk,
    visit_partition,
)
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.models import ReportCounters, VisitImage

VISIT_INDEX = "VisitsByArea"
TIME_MIN = "0001-01-01T00:00:00.000Z"
TIME_MAX = "9999-12-31T23:59:59.999Z"
_TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
_VISIT_SK = re.compile(rf"^(?P<store>.+)#(?P<time>{_TIME})#(?P<job>[^#]+)#(?P<index>\d{{8}})$")
_CURSOR = re.compile(r"^(?P<shard>\d{2})\|(?P<sk>.+)$", re.DOTALL)


class DynamoReportRepository(TableAccess):
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
        client_id: str | None,
    ) -> tuple[list[VisitImage], str | None]:
        """Ended images of a store (or of every store of an area) with start <= visit_time_utc <= end,
        of client `client_id` (None: every client's): a store's in visit-time order, an area's store by
        store. At most `limit` images and a cursor to pass as `after` for the next page (None on the
        last page). Raises ValueError on a cursor this query did not hand out."""
        low, high = start or TIME_MIN, end or TIME_MAX
        shards = [int(visit_partition(area, store_id).rsplit("#", 1)[1])] if store_id else list(range(VISIT_SHARDS))
        prefix = f"{client_id}#" if client_id is not None else None
        resume: tuple[int, str] | None = (
            self._cursor(after, store_id, shards, low, high, prefix=prefix) if after else None
        )
        found: list[tuple[int, dict]] = []
        for shard in shards:
            if resume and shard < resume[0]:
                continue
            kwargs = self._visit_query(area, shard, store_id, low, high, prefix=prefix)
            if resume and shard == resume[0]:
                kwargs["ExclusiveStartKey"] = to_item(_index_key(f"{area}#{shard:02d}", resume[1]))
            items, _ = self.query_page(limit + 1 - len(found), **kwargs)
            found += [(shard, i) for i in items if store_id is None or i["store_id"] == store_id]
            if len(found) > limit:
                break
        page = found[:limit]
        cursor = f"{page[-1][0]:02d}|{page[-1][1]['visit_area_sk']}" if len(found) > limit else None
        visits = [
            VisitImage(
                store_id=i["store_id"],
                visit_time_utc=i["visit_time_utc"],
                status=i["status"],
                perimeter=i.get("perimeter"),
            )
            for _, i in page
        ]
        return visits, cursor

    def _visit_query(
        self, area: str, shard: int, store_id: str | None, low: str, high: str, *, prefix: str | None
    ) -> dict[str, Any]:
        """One shard's Query: a client's (`prefix`) own key range; an admin's (None) whole partition."""
        kwargs: dict[str, Any] = {
            "IndexName": VISIT_INDEX,
            "ExpressionAttributeNames": {"#pk": "visit_area", "#sk": "visit_area_sk", "#status": "status"},
            "ProjectionExpression": "#sk, store_id, visit_time_utc, #status, perimeter",
        }
        values: dict[str, Any] = {":pk": f"{area}#{shard:02d}"}
        filters = []
        if store_id is not None and prefix is not None:
            # Sort keys are "<client>#<store>#<24-char time>#...": "$" sorts right after "#", so
            # "<high>$" bounds time <= high.
            kwargs["KeyConditionExpression"] = "#pk = :pk AND #sk BETWEEN :low AND :high"
            values.update({":low": f"{prefix}{store_id}#{low}", ":high": f"{prefix}{store_id}#{high}$"})
        else:
            kwargs["KeyConditionExpression"] = "#pk = :pk"
            if prefix is not None:
                kwargs["KeyConditionExpression"] += " AND begins_with(#sk, :prefix)"
                values[":prefix"] = prefix
            if store_id is not None:  # an admin's store: every client's range, filtered
                filters.append("store_id = :store")
                values[":store"] = store_id
            if (low, high) != (TIME_MIN, TIME_MAX):
                filters.append("visit_time_utc BETWEEN :low AND :high")
                values.update({":low": low, ":high": high})
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = to_item(values)
        return kwargs

    @staticmethod
    def _cursor(
        after: str, store_id: str | None, shards: list[int], low: str, high: str, *, prefix: str | None
    ) -> tuple[int, str]:
        cursor, sk = _CURSOR.match(after), _VISIT_SK.match(after.split("|", 1)[-1])
        if cursor is None or sk is None:
            raise ValueError("cursor not from this query")
        keyed = sk["store"]  # "<client>#<store>" (just "<store>" before clients)
        if prefix is not None:  # a client's: its own range (of its store)
            mine = keyed == f"{prefix}{store_id}" if store_id is not None else keyed.startswith(prefix)
        else:  # an admin's: any client's (of the store)
            mine = store_id is None or keyed == store_id or keyed.endswith(f"#{store_id}")
        if not mine or int(cursor["shard"]) not in shards or not low <= sk["time"] <= high:
            raise ValueError("cursor not from this query")
        return int(cursor["shard"]), cursor["sk"]

    # -- reports --------------------------------------------------------------------------
    def clients(self) -> list[str]:
        """Every client that has submitted a job (create_job and create_fanout_job register it)."""
        items = self.query_all(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": CLIENTS_PK})
        )
        return [i["client_id"] for i in items]

    def area_counters(self, area: str, clients: Sequence[str]) -> ReportCounters:
        """The area's counters summed over these clients' shards (BatchGetItem, 100 keys a request)."""
        keys = [{"pk": report_pk(c, area, shard), "sk": AREA_SK} for c in clients for shard in range(REPORT_SHARDS)]
        total = ReportCounters()
        for item in self.batch_get_all(keys):
            total.add(_counters(item))
        return total

    def store_counters(self, area: str, store_id: str | None, clients: Sequence[str]) -> dict[str, ReportCounters]:
        """Store id -> counters summed over these clients, for the stores of `area` (or just
        `store_id`) with anything counted."""
        out: dict[str, ReportCounters] = defaultdict(ReportCounters)
        pks = [report_pk(c, area, shard) for c in clients for shard in range(REPORT_SHARDS)]
        if store_id is not None:
            items: Iterable[dict] = self.batch_get_all([{"pk": pk, "sk": store_sk(store_id)} for pk in pks])
        else:
            items = (
                item
                for pk in pks
                for item in self.query_all(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                    ExpressionAttributeValues=to_item({":pk": pk, ":prefix": STORE_SK_PREFIX}),
                )
            )
        for item in items:
            out[item["store_id"]].add(_counters(item))
        return dict(out)


def _index_key(partition: str, sk: str) -> dict[str, str]:
    """The ExclusiveStartKey of the visit index at `sk`: the index keys and the result item's own."""
    m = _VISIT_SK.match(sk)
    if m is None:
        raise ValueError("cursor not from this query")
    base = result_key(m["job"], int(m["index"]))
    return {**base, "visit_area": partition, "visit_area_sk": sk}


def _counters(item: dict) -> ReportCounters:
    images = int(item.get("images", 0))
    return ReportCounters(
        images=images,
        failed=int(item.get("failed", 0)),
        visits=int(item.get("visits", 0)),
        duration_ms=int(item.get("duration_ms", 0)),
        attempts=int(item.get("attempts", images)),
        last_visit=item.get("last_visit"),
    )
