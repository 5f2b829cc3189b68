"""Jobs, results and per-store errors in one DynamoDB table.

Key design (single table, pk/sk strings):
  job item     pk=JOB#<id>  sk=JOB             counters, status, times: status is one GetItem
  result item  pk=JOB#<id>  sk=IMG#<index:08>  one per ended image: results page in submission order
  store error  pk=JOB#<id>  sk=ERR#<store_id>  first failure per store, read with one bounded Query
Every item carries `expires_at` (the table's TTL attribute). Results of stores in the Store Master
also carry the visit-index GSI keys, and each batch's transaction ADDs to the report counters
(see dynamodb_reports.py: those items have no TTL).

Exactly-once: a batch's results go out in one TransactWriteItems: each result Put is conditional
on the item not existing, and the job's counters are ADDed in the same transaction (conditional
on the job still being ongoing). A redelivered image fails its condition, is dropped, and the
rest is retried, so counters move once per image however often SQS delivers it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from .dynamodb_reports import report_updates, visit_index_attributes
from .models import FinishedJob, ImageResult, ImageTask, Job
from .validation import utc_now

MAX_STORE_ERRORS = 1000
RESULT_PREFIX = "IMG#"
ERROR_PREFIX = "ERR#"
JOB_SK = "JOB"
ERROR_TEXT_LIMIT = 500
# Results per TransactWriteItems (limit 100 items): each brings at most a result Put, a job, an
# error, a store report and an area report item. SQS batches are 10, so one transaction each.
RESULTS_PER_TRANSACTION = 20
CONFLICT_ATTEMPTS = 4

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def result_sk(index: int) -> str:
    return f"{RESULT_PREFIX}{index:08d}"


def _ser(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _de(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in item.items():
        plain = _deserializer.deserialize(value)
        if hasattr(plain, "as_integer_ratio") and not isinstance(plain, (int, float)):
            plain = int(plain) if plain == int(plain) else float(plain)
        out[key] = plain
    return out


class DynamoJobRepository:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb", config=Config(retries={"mode": "standard"}))

    # -- submit ---------------------------------------------------------------------------
    def create_job(
        self, job_id: str, total: int, ended_at_submit: Sequence[ImageResult], created_at: str, expires_at: int
    ) -> None:
        failed = sum(1 for r in ended_at_submit if r.status == "failed")
        succeeded = len(ended_at_submit) - failed
        remaining = total - len(ended_at_submit)
        job = {
            "pk": job_pk(job_id),
            "sk": JOB_SK,
            "job_id": job_id,
            "status": "ongoing" if remaining else ("failed" if failed else "completed"),
            "total": total,
            "succeeded": succeeded,
            "failed": failed,
            "remaining": remaining,
            "created_at": created_at,
            "finished_at": None if remaining else created_at,
            "expires_at": expires_at,
        }
        # Results first: once the job item exists, its counters already include them.
        requests = [{"PutRequest": {"Item": _ser(self._result_item(r))}} for r in ended_at_submit]
        requests += [{"PutRequest": {"Item": _ser(item)}} for item in self._error_items(ended_at_submit)]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start : start + 25])
        self.client.put_item(TableName=self.table_name, Item=_ser(job), ConditionExpression="attribute_not_exists(pk)")

    def _batch_write(self, requests: list[dict]) -> None:
        pending = {self.table_name: requests}
        for _ in range(8):
            unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = unprocessed
        raise RuntimeError("DynamoDB left items unprocessed after retries")

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
            UpdateExpression="SET #status = :failed, finished_at = :now, reason = :reason",
            ConditionExpression="#status = :ongoing",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_ser(
                {":failed": "failed", ":ongoing": "ongoing", ":now": finished_at, ":reason": reason}
            ),
        )

    # -- processing -----------------------------------------------------------------------
    def record_batch(self, results: Sequence[ImageResult]) -> list[FinishedJob]:
        for start in range(0, len(results), RESULTS_PER_TRANSACTION):
            self._record(results[start : start + RESULTS_PER_TRANSACTION])
        finished = [self.finish_if_done(job_id) for job_id in sorted({r.task.job_id for r in results})]
        return [job for job in finished if job is not None]

    def _record(self, results: Sequence[ImageResult]) -> None:
        pending = list(results)
        conflicts = 0
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
                        drop_results.add(key)  # already recorded by an earlier delivery
                    elif kind == "job":
                        drop_jobs.add(key)  # job finished (or unknown): it must not change any more
                if not drop_results and not drop_jobs:
                    codes = {r.get("Code") for r in reasons} - {"None", None}
                    conflicts += 1
                    if codes == {"TransactionConflict"} and conflicts < CONFLICT_ATTEMPTS:
                        # Another batch's transaction held one of our items (the job, a report
                        # shard): nothing was written, so trying again after a moment is safe.
                        time.sleep(random.uniform(0.02, 0.1) * 2**conflicts)
                        continue
                    raise  # throttling / lasting conflict: let SQS redeliver these records
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
                        "UpdateExpression": "ADD succeeded :ok, failed :bad, remaining :done",
                        "ConditionExpression": "#status = :ongoing",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": _ser(
                            {":ok": ok, ":bad": bad, ":done": -(ok + bad), ":ongoing": "ongoing"}
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
                        # The first failure of a store wins; later ones leave it as it is.
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
        # Report counters of the same results, in the same transaction: exact under redelivery.
        for update, label in report_updates(self.table_name, results):
            items.append(update)
            owners.append(("report", label))
        return items, owners

    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        """Finishes the job if nothing remains; returns it only when this call was the one that did."""
        job = self._get_job_item(job_id)
        if not job or job["status"] != "ongoing" or job["remaining"] > 0:
            return None
        final, now = ("failed" if job["failed"] else "completed"), utc_now()
        # Another worker may finish it first: then the condition fails and this is a no-op.
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET #status = :final, finished_at = :now",
                ConditionExpression="#status = :ongoing AND remaining <= :zero",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ser({":final": final, ":now": now, ":ongoing": "ongoing", ":zero": 0}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return FinishedJob(job_id, final, job["created_at"], now)

    # -- reads ----------------------------------------------------------------------------
    def _get_job_item(self, job_id: str) -> dict | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}), ConsistentRead=True
        )
        return _de(resp["Item"]) if "Item" in resp else None

    def get_job(self, job_id: str) -> Job | None:
        item = self._get_job_item(job_id)
        if item is None:
            return None
        job = Job(
            job_id=item["job_id"],
            status=item["status"],
            total=item["total"],
            succeeded=item["succeeded"],
            failed=item["failed"],
            created_at=item["created_at"],
            finished_at=item.get("finished_at"),
            reason=item.get("reason"),
        )
        if job.failed:
            errors = self._query(job_id, ERROR_PREFIX, None, MAX_STORE_ERRORS + 1)
            job.store_errors = [{"store_id": e["store_id"], "error": e["error"]} for e in errors[:MAX_STORE_ERRORS]]
            job.store_errors_truncated = len(errors) > MAX_STORE_ERRORS
        return job

    def page_results(self, job_id: str, after_index: int | None, limit: int) -> tuple[list[ImageResult], bool]:
        start = result_sk(after_index) if after_index is not None else None
        items = self._query(job_id, RESULT_PREFIX, start, limit + 1)
        return [self._result_from_item(job_id, i) for i in items[:limit]], len(items) > limit

    def _query(self, job_id: str, prefix: str, start_sk: str | None, want: int) -> list[dict]:
        """Items of one job whose sk starts with `prefix`, after `start_sk`, at most `want` of them."""
        out: list[dict] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _ser({":pk": job_pk(job_id), ":prefix": prefix}),
        }
        if start_sk:
            kwargs["ExclusiveStartKey"] = _ser({"pk": job_pk(job_id), "sk": start_sk})
        while len(out) < want:
            resp = self.client.query(Limit=want - len(out), **kwargs)
            out += [_de(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return out

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
            **visit_index_attributes(r),  # GSI keys: only on results of stores in the Store Master
        }

    @staticmethod
    def _result_from_item(job_id: str, item: dict) -> ImageResult:
        task = ImageTask(
            job_id=job_id,
            index=int(item["sk"][len(RESULT_PREFIX) :]),
            store_id=item["store_id"],
            image_url=item["image_url"],
            visit_time=item["visit_time"],
            expires_at=item.get("expires_at", 0),
        )
        return ImageResult(
            task=task,
            status=item["status"],
            processed_at=item["processed_at"],
            width=item.get("width"),
            height=item.get("height"),
            perimeter=item.get("perimeter"),
            error=item.get("error"),
        )

    @staticmethod
    def _error_items(results: Sequence[ImageResult]) -> list[dict]:
        """One item per (job, store) with a failure in `results`: the first failure in order."""
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
