"""FROZEN COPY of f399a74's write path (dynamodb_jobs.py + dynamodb_reports.py), for the scale model's
comparison only: not product code.

Exactly-once then: a batch's results go out in one TransactWriteItems: each result Put conditional
on the item not existing, the job's counters ADDed in the same transaction (conditional on the job
being ongoing), the first failure of each store, and the batch's report counters (one shard of each
area and store, chosen by a hash of the batch's first image). A transaction cancelled only by
TransactionConflict is tried again a few times; anything else (a throttle, a lasting conflict)
raises, and the batch's records go back to SQS.

Adapted: imports; `sleep` (the model stretches the backoff by its time scale); `observe(event)`,
called with "operation" (a transaction to write), "conflict" / "throttle" (a refused attempt; `first`:
the operation's first attempt) and "gave_up", so the model can count what happened.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from retail_pulse.adapters.dynamodb.items import from_item as _de
from retail_pulse.adapters.dynamodb.items import to_item as _ser
from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.models import FinishedJob, ImageResult, JobState

RESULT_PREFIX = "IMG#"
ERROR_PREFIX = "ERR#"
JOB_SK = "JOB"
ERROR_TEXT_LIMIT = 500
RESULTS_PER_TRANSACTION = 20
CONFLICT_ATTEMPTS = 4
JOB_LIST = "JOB"
NOTICE_CHANNELS = {"topic", "callback"}
NOTICE_DUE = "DUE"
NOTICE_LEASE_S = 120
AREA_SHARDS = 10
STORE_SHARDS = 4


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def result_sk(index: int) -> str:
    return f"{RESULT_PREFIX}{index:08d}"


@dataclass
class _Counters:  # f399a74's ReportCounters
    images: int = 0
    failed: int = 0
    visits: int = 0
    duration_ms: int = 0
    days: set[str] = field(default_factory=set)

    def add(self, other: _Counters) -> None:
        self.images += other.images
        self.failed += other.failed
        self.visits += other.visits
        self.duration_ms += other.duration_ms
        self.days |= other.days


class BaselineJobRepository:
    def __init__(
        self,
        table_name: str,
        client: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[..., None] = lambda event, first=False: None,
    ) -> None:
        self.table_name = table_name
        self.client = client or boto3.client(
            "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 3})
        )
        self.sleep = sleep
        self.observe = observe

    # -- submit ---------------------------------------------------------------------------
    def create_job(
        self,
        job_id: str,
        total: int,
        ended_at_submit: Sequence[ImageResult],
        created_at: str,
        expires_at: int,
        *,
        callback_url: str | None = None,
        retry_of: str | None = None,
        client_id: str | None = None,  # jobs had no client on this path: not written
    ) -> None:
        failed = sum(1 for r in ended_at_submit if r.status == "failed")
        remaining = total - len(ended_at_submit)
        job = {
            "pk": job_pk(job_id),
            "sk": JOB_SK,
            "job_id": job_id,
            "status": "ongoing" if remaining else ("failed" if failed else "completed"),
            "total": total,
            "succeeded": len(ended_at_submit) - failed,
            "failed": failed,
            "remaining": remaining,
            "created_at": created_at,
            "progressed_at": created_at,
            "finished_at": None if remaining else created_at,
            "expires_at": expires_at,
            "job_list": JOB_LIST,
            "job_list_sk": f"{created_at}#{job_id}",
            "callback_url": callback_url,
            "retry_of": retry_of,
        }
        requests = [{"PutRequest": {"Item": _ser(self._result_item(r))}} for r in ended_at_submit]
        requests += [{"PutRequest": {"Item": _ser(item)}} for item in self._error_items(ended_at_submit)]
        for start in range(0, len(requests), 25):
            pending = {self.table_name: requests[start : start + 25]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        self.client.put_item(TableName=self.table_name, Item=_ser(job), ConditionExpression="attribute_not_exists(pk)")

    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        keys = [{"pk": job_pk(j), "sk": JOB_SK} for j in dict.fromkeys(job_ids)]
        out: dict[str, JobState] = {}
        for start in range(0, len(keys), 100):
            request = {
                "Keys": [_ser(k) for k in keys[start : start + 100]],
                "ConsistentRead": True,
                "ProjectionExpression": "job_id, #status, notices_owed",
                "ExpressionAttributeNames": {"#status": "status"},
            }
            pending: dict = {self.table_name: request}
            for attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    i = _de(item)
                    out[i["job_id"]] = JobState(i["job_id"], i["status"], bool(i.get("notices_owed")))
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                self.sleep(random.uniform(0.01, 0.05) * 2**attempt)
            else:
                raise RuntimeError("DynamoDB left keys unprocessed after retries")
        return out

    # -- processing -----------------------------------------------------------------------
    def record_batch(self, results: Sequence[ImageResult]) -> list[FinishedJob]:
        for start in range(0, len(results), RESULTS_PER_TRANSACTION):
            self._record(results[start : start + RESULTS_PER_TRANSACTION])
        finished = [self.finish_if_done(job_id) for job_id in sorted({r.task.job_id for r in results})]
        return [job for job in finished if job is not None]

    def _record(self, results: Sequence[ImageResult]) -> None:
        pending = list(results)
        conflicts = 0
        self.observe("operation")
        while pending:
            items, owners = self._transaction(pending)
            try:
                self.client.transact_write_items(TransactItems=items)
                break
            except self.client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons") or []
                drop_results: set[tuple[str, int]] = set()
                drop_jobs: set[str] = set()
                for owner, reason in zip(owners, reasons, strict=False):
                    if reason.get("Code") != "ConditionalCheckFailed":
                        continue
                    kind, key = owner
                    if kind == "result":
                        drop_results.add(key)
                    elif kind == "job":
                        drop_jobs.add(key)
                if not drop_results and not drop_jobs:
                    codes = {r.get("Code") for r in reasons} - {"None", None}
                    self.observe("conflict" if codes == {"TransactionConflict"} else "throttle", conflicts == 0)
                    conflicts += 1
                    if codes == {"TransactionConflict"} and conflicts < CONFLICT_ATTEMPTS:
                        self.sleep(random.uniform(0.02, 0.1) * 2**conflicts)
                        continue
                    self.observe("gave_up")
                    raise
                pending = [
                    r
                    for r in pending
                    if (r.task.job_id, r.task.index) not in drop_results and r.task.job_id not in drop_jobs
                ]

    def _transaction(self, results: Sequence[ImageResult]) -> tuple[list[dict], list[tuple[str, Any]]]:
        items: list[dict] = []
        owners: list[tuple[str, Any]] = []
        counts: dict[str, list[int]] = {}
        for r in results:
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": _ser(self._result_item(r)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
            owners.append(("result", (r.task.job_id, r.task.index)))
            c = counts.setdefault(r.task.job_id, [0, 0])
            c[0 if r.status == "succeeded" else 1] += 1
        for job_id, (ok, bad) in counts.items():
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                        "UpdateExpression": "ADD succeeded :ok, failed :bad, remaining :done SET progressed_at = :now",
                        "ConditionExpression": "#status = :ongoing",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": _ser(
                            {":ok": ok, ":bad": bad, ":done": -(ok + bad), ":ongoing": "ongoing", ":now": utc_now()}
                        ),
                    }
                }
            )
            owners.append(("job", job_id))
        for error in self._error_items(results):
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _ser({"pk": error["pk"], "sk": error["sk"]}),
                        "UpdateExpression": "SET #error = if_not_exists(#error, :error), store_id = :store,"
                        " expires_at = :exp",
                        "ExpressionAttributeNames": {"#error": "error"},
                        "ExpressionAttributeValues": _ser(
                            {":error": error["error"], ":store": error["store_id"], ":exp": error["expires_at"]}
                        ),
                    }
                }
            )
            owners.append(("error", error["sk"]))
        for update, label in report_updates(self.table_name, results):
            items.append(update)
            owners.append(("report", label))
        return items, owners

    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}), ConsistentRead=True
        )
        job = _de(resp["Item"]) if "Item" in resp else None
        if not job or job["status"] != "ongoing" or job["remaining"] > 0:
            return None
        final, now = ("failed" if job["failed"] else "completed"), utc_now()
        lease = format_utc(datetime.now(UTC) + timedelta(seconds=NOTICE_LEASE_S))
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET #status = :final, finished_at = :now,"
                " notices_owed = :owed, notice_lease = :lease, notice_due = :due",
                ConditionExpression="#status = :ongoing AND remaining <= :zero",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ser(
                    {
                        ":final": final,
                        ":now": now,
                        ":ongoing": "ongoing",
                        ":zero": 0,
                        ":owed": NOTICE_CHANNELS,
                        ":due": NOTICE_DUE,
                        ":lease": lease,
                    }
                ),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return FinishedJob(job_id, final, job["created_at"], now)

    # -- item shapes ----------------------------------------------------------------------
    @staticmethod
    def _result_item(r: ImageResult) -> dict:
        return {
            "pk": job_pk(r.task.job_id),
            "sk": result_sk(r.task.index),
            "store_id": r.task.store_id,
            "image_url": r.task.image_url,
            "visit_time": r.task.visit_time,
            "status": r.status,
            "width": r.width,
            "height": r.height,
            "perimeter": r.perimeter,
            "error": r.error,
            "processed_at": r.processed_at,
            "expires_at": r.task.expires_at,
            **visit_index_attributes(r),
        }

    @staticmethod
    def _error_items(results: Sequence[ImageResult]) -> list[dict]:
        seen: dict[tuple[str, str], dict] = {}
        for r in results:
            key = (r.task.job_id, r.task.store_id)
            if r.status == "failed" and key not in seen:
                seen[key] = {
                    "pk": job_pk(r.task.job_id),
                    "sk": f"{ERROR_PREFIX}{r.task.store_id}",
                    "job_id": r.task.job_id,
                    "store_id": r.task.store_id,
                    "error": (r.error or "failed")[:ERROR_TEXT_LIMIT],
                    "expires_at": r.task.expires_at,
                }
        return list(seen.values())


# -- dynamodb_reports.py (f399a74) ------------------------------------------------------------
def batch_shard(results: Sequence[ImageResult]) -> int:
    first = min((r.task.job_id, r.task.index) for r in results)
    return int.from_bytes(hashlib.sha256(f"{first[0]}#{first[1]}".encode()).digest()[:8], "big")


def visit_index_attributes(r: ImageResult) -> dict[str, Any]:
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
    counted = [r for r in results if r.task.area]
    if not counted:
        return []
    shard = batch_shard(counted)
    areas: dict[str, _Counters] = defaultdict(_Counters)
    stores: dict[tuple[str, str], _Counters] = defaultdict(_Counters)
    for r in counted:
        one = _Counters(
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
        sk = f"AREA#{shard % AREA_SHARDS:02d}"
        updates.append((_counter_update(table_name, f"REPORT#{area}", sk, c, {"area": area}), f"report {area} {sk}"))
    for (area, store_id), c in sorted(stores.items()):
        sk = f"STORE#{store_id}#{shard % STORE_SHARDS:02d}"
        fields = {"area": area, "store_id": store_id}
        updates.append((_counter_update(table_name, f"REPORT#{area}", sk, c, fields), f"report {area} {sk}"))
    return updates


def _counter_update(table_name: str, pk: str, sk: str, c: _Counters, fields: dict[str, str]) -> dict:
    adds: dict[str, Any] = {"images": c.images, "failed": c.failed, "visits": c.visits, "duration_ms": c.duration_ms}
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
