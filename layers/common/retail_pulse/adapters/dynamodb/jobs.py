"""Jobs, results and per-store errors in one DynamoDB table.

Key design (single table, pk/sk strings):
  job item     pk=JOB#<id>  sk=JOB             counters, status, times: status is one GetItem
  result item  pk=JOB#<id>  sk=IMG#<index:08>  one per ended image: results page in submission order
  store error  pk=JOB#<id>  sk=ERR#<store_id>  first failure per store, read with one bounded Query
Job items also carry the keys of two sparse KEYS_ONLY GSIs (no other item has them):
  JobsByCreatedAt  job_list="JOB" / job_list_sk=<created_at>#<id>   every job, newest first
  JobsByStatus     status / created_at                            jobs of one status (results have a
                                                                   status but no created_at: not indexed)
Every item carries `expires_at` (the table's TTL attribute). Results of stores in the Store Master
also carry the visit-index GSI keys, and each batch's transaction ADDs to the report counters
(see dynamodb_reports.py: those items have no TTL).

Exactly-once: a batch's results go out in one TransactWriteItems: each result Put is conditional
on the item not existing, and the job's counters are ADDed in the same transaction (conditional
on the job still being ongoing). A redelivered image fails its condition, is dropped, and the
rest is retried, so counters move once per image however often SQS delivers it.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from retail_pulse.adapters.dynamodb.items import from_item as _de
from retail_pulse.adapters.dynamodb.items import to_item as _ser
from retail_pulse.adapters.dynamodb.reports import report_updates, visit_index_attributes
from retail_pulse.domain.clock import format_utc, utc_now
from retail_pulse.domain.models import FinishedJob, ImageResult, ImageTask, Job, JobState

MAX_STORE_ERRORS = 1000
RESULT_PREFIX = "IMG#"
ERROR_PREFIX = "ERR#"
JOB_SK = "JOB"
ERROR_TEXT_LIMIT = 500
# Results per TransactWriteItems (limit 100 items): each brings at most a result Put, a job, an
# error, a store report and an area report item. SQS batches are 10, so one transaction each.
RESULTS_PER_TRANSACTION = 20
CONFLICT_ATTEMPTS = 4
JOB_LIST = "JOB"  # the one partition of JobsByCreatedAt (a job list needs one ordered partition)
JOBS_BY_CREATED_AT = "JobsByCreatedAt"
JOBS_BY_STATUS = "JobsByStatus"
# Completion notice channels owed by a job that just ended (the outbox: see logic/notify.py).
NOTICE_CHANNELS = {"topic", "callback"}
# Sparse NoticesDue index: only jobs that still owe a notice carry it, so the stall sweeper can retry
# notices that an ending path (DLQ consumer, sweeper, submit, cancel) could not publish.
NOTICE_DUE = "DUE"
NOTICES_DUE = "NoticesDue"
NOTICE_LEASE_S = 120  # a sender holds a job's notice this long before another may take it over


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def result_sk(index: int) -> str:
    return f"{RESULT_PREFIX}{index:08d}"


class DynamoJobRepository:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table_name = table_name
        # Throttling is retried here a few times; beyond that SQS redelivers the batch (and counts it).
        self.client = client or boto3.client(
            "dynamodb", config=Config(retries={"mode": "standard", "total_max_attempts": 3})
        )

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
            "progressed_at": created_at,
            "finished_at": None if remaining else created_at,
            "expires_at": expires_at,
            "job_list": JOB_LIST,
            "job_list_sk": f"{created_at}#{job_id}",
            "callback_url": callback_url,
            "retry_of": retry_of,
        }
        if not remaining:  # ended at submit (every store unknown): it owes its notice, to this caller
            job.update({"notices_owed": NOTICE_CHANNELS, "notice_lease": _lease_until(), "notice_due": NOTICE_DUE})
        # Results first: once the job item exists, its counters already include them.
        requests = [{"PutRequest": {"Item": _ser(self._result_item(r))}} for r in ended_at_submit]
        requests += [{"PutRequest": {"Item": _ser(item)}} for item in self._error_items(ended_at_submit)]
        for start in range(0, len(requests), 25):
            self._batch_write(requests[start : start + 25])
        self.client.put_item(TableName=self.table_name, Item=_ser(job), ConditionExpression="attribute_not_exists(pk)")

    def _batch_write(self, requests: list[dict]) -> None:
        pending = {self.table_name: requests}
        for attempt in range(8):
            unprocessed = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not unprocessed:
                return
            pending = unprocessed
            time.sleep(random.uniform(0.5, 1.0) * min(1.0, 0.05 * 2**attempt))  # throttled: back off
        raise RuntimeError("DynamoDB left items unprocessed after retries")

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None:
        """Ends an ongoing job as failed with `reason`; None when it is not ongoing (any more).

        The images not ended yet end with it (counted failed, no per-image result): batches still
        in the queue find the job failed and are dropped, so processed reaches total. Like every
        ending, the update owes the job's notice, leased to this caller."""
        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET #status = :failed, finished_at = :now, reason = :reason,"
                " failed = failed + remaining, remaining = :zero,"
                " notices_owed = :owed, notice_lease = :lease, notice_due = :due",
                ConditionExpression="#status = :ongoing",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ser(
                    {
                        ":failed": "failed",
                        ":ongoing": "ongoing",
                        ":now": finished_at,
                        ":reason": reason,
                        ":zero": 0,
                        ":owed": NOTICE_CHANNELS,
                        ":due": NOTICE_DUE,
                        ":lease": _lease_until(),
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return FinishedJob(job_id, "failed", _de(resp["Attributes"])["created_at"], finished_at)

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
                        # progressed_at: when the job last moved (the stall sweeper reads it).
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
        # Another worker may finish it first: then the condition fails and this is a no-op. The same
        # update owes the completion notice (outbox) and hands its lease to this caller.
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
                        ":lease": _lease_until(),
                    }
                ),
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
        job = self._job_from_item(item)
        if job.failed:
            errors = self._query(job_id, ERROR_PREFIX, None, MAX_STORE_ERRORS + 1)
            job.store_errors = [{"store_id": e["store_id"], "error": e["error"]} for e in errors[:MAX_STORE_ERRORS]]
            job.store_errors_truncated = len(errors) > MAX_STORE_ERRORS
        return job

    # -- lifecycle: list, cancel, retry, notices ---------------------------------------------
    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Status of each job (absent: unknown), one consistent BatchGetItem per 100 jobs."""
        keys = [{"pk": job_pk(j), "sk": JOB_SK} for j in dict.fromkeys(job_ids)]
        items = self._batch_get(keys, "job_id, #status, notices_owed", consistent=True)
        return {i["job_id"]: JobState(i["job_id"], i["status"], bool(i.get("notices_owed"))) for i in items.values()}

    def page_jobs(self, status: str | None, after: dict | None, limit: int) -> tuple[list[Job], dict | None]:
        """Jobs newest first (of `status` if given): at most `limit`, and the cursor of the next page.
        Raises ValueError on a cursor this method did not hand out for the same `status`."""
        if status is None:
            index, key_names, partition = JOBS_BY_CREATED_AT, ("job_list", "job_list_sk"), JOB_LIST
        else:
            index, key_names, partition = JOBS_BY_STATUS, ("status", "created_at"), status
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#part = :part",
            "ExpressionAttributeNames": {"#part": key_names[0]},
            "ExpressionAttributeValues": _ser({":part": partition}),
            "ScanIndexForward": False,
        }
        if after is not None:
            names = {"pk", "sk", *key_names}
            valid = (
                isinstance(after, dict)
                and set(after) == names
                and all(isinstance(v, str) and v for v in after.values())  # DynamoDB refuses empty keys
                and after[key_names[0]] == partition
                and after["sk"] == JOB_SK
                and after["pk"].startswith("JOB#")
                and len(after["pk"]) > len("JOB#")
            )
            if not valid:
                raise ValueError("cursor not from this listing")
            kwargs["ExclusiveStartKey"] = _ser(after)
        keys: list[dict] = []
        while len(keys) <= limit:  # one more than a page tells whether another page follows
            resp = self.client.query(Limit=limit + 1 - len(keys), **kwargs)
            keys += [_de(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        page, more = keys[:limit], len(keys) > limit
        found = self._batch_get([{"pk": k["pk"], "sk": JOB_SK} for k in page], None, consistent=False)
        jobs = []
        for key in page:
            item = found.get(key["pk"])
            # The index is eventually consistent: a job may have changed status (or expired) since.
            if item is None or (status is not None and item["status"] != status):
                continue
            jobs.append(self._job_from_item(item))
        cursor = {name: page[-1][name] for name in ("pk", "sk", *key_names)} if more and page else None
        return jobs, cursor

    def _batch_get(self, keys: list[dict], projection: str | None, *, consistent: bool) -> dict[str, dict]:
        """Items by pk (job items), BatchGetItem in chunks of 100, unprocessed keys retried."""
        out: dict[str, dict] = {}
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                "Keys": [_ser(k) for k in keys[start : start + 100]],
                "ConsistentRead": consistent,
            }
            if projection:
                request["ProjectionExpression"] = projection
                request["ExpressionAttributeNames"] = {"#status": "status"}
            pending = {self.table_name: request}
            for attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    plain = _de(item)
                    out[job_pk(plain["job_id"])] = plain
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
            else:
                raise RuntimeError("DynamoDB left keys unprocessed after retries")
        return out

    def cancel_job(self, job_id: str, now: str) -> FinishedJob | None:
        """Ends an ongoing job as cancelled: the images not ended yet move from `remaining` to
        `cancelled` in the same update, so processed = total from now on and in-flight batches (whose
        counter update requires `status = ongoing`) are dropped whole. None when it was not ongoing."""
        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET #status = :cancelled, finished_at = :now, cancelled = remaining,"
                " remaining = :zero, notices_owed = :owed, notice_lease = :lease, notice_due = :due",
                ConditionExpression="#status = :ongoing",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ser(
                    {
                        ":cancelled": "cancelled",
                        ":now": now,
                        ":zero": 0,
                        ":ongoing": "ongoing",
                        ":owed": NOTICE_CHANNELS,
                        ":due": NOTICE_DUE,
                        ":lease": _lease_until(),
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        item = _de(resp["Attributes"])
        return FinishedJob(job_id, "cancelled", item["created_at"], now)

    def failed_results(self, job_id: str) -> list[ImageResult]:
        """The job's failed images in submission order (one paginated Query of its results)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "#status = :failed",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": _ser({":pk": job_pk(job_id), ":prefix": RESULT_PREFIX, ":failed": "failed"}),
        }
        return [self._result_from_item(job_id, item) for item in self._query_all(**kwargs)]

    def link_retry(self, job_id: str, retry_job_id: str) -> bool:
        """Marks an ended job as retried by `retry_job_id`; False if it is ongoing, unknown or already retried."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET retried_by = :retry",
                ConditionExpression="attribute_exists(pk) AND #status <> :ongoing AND attribute_not_exists(retried_by)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_ser({":retry": retry_job_id, ":ongoing": "ongoing"}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def unlink_retry(self, job_id: str, retry_job_id: str) -> None:
        """Undoes link_retry when the retry job could not be created."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="REMOVE retried_by",
                ConditionExpression="retried_by = :retry",
                ExpressionAttributeValues=_ser({":retry": retry_job_id}),
            )

    def claim_notice(self, job_id: str) -> bool:
        """Takes the lease on a job's owed notice (when nobody holds a live one): True if taken."""
        now = utc_now()
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="SET notice_lease = :lease",
                ConditionExpression="attribute_exists(notices_owed) AND"
                " (attribute_not_exists(notice_lease) OR notice_lease < :now)",
                ExpressionAttributeValues=_ser({":lease": _lease_until(), ":now": now}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def notice_delivered(self, job_id: str, channel: str) -> None:
        """Takes `channel` off the job's owed notices (the set disappears with its last member, and
        then the job leaves the NoticesDue index)."""
        resp = self.client.update_item(
            TableName=self.table_name,
            Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
            UpdateExpression="DELETE notices_owed :channel",
            ExpressionAttributeValues=_ser({":channel": {channel}}),
            ReturnValues="ALL_NEW",
        )
        if "notices_owed" not in resp.get("Attributes", {}):
            self.client.update_item(
                TableName=self.table_name,
                Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
                UpdateExpression="REMOVE notice_due",
                ConditionExpression="attribute_not_exists(notices_owed)",
            )

    def notices_due(self, ended_before: str) -> list[str]:
        """Ids of jobs that ended before `ended_before` and still owe a notice (NoticesDue index)."""
        items = self._query_all(
            TableName=self.table_name,
            IndexName=NOTICES_DUE,
            KeyConditionExpression="notice_due = :due AND finished_at < :before",
            ExpressionAttributeValues=_ser({":due": NOTICE_DUE, ":before": ended_before}),
        )
        return [item["pk"][len("JOB#") :] for item in items]

    def release_notice(self, job_id: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key=_ser({"pk": job_pk(job_id), "sk": JOB_SK}),
            UpdateExpression="REMOVE notice_lease",
        )

    def page_results(self, job_id: str, after_index: int | None, limit: int) -> tuple[list[ImageResult], bool]:
        start = result_sk(after_index) if after_index is not None else None
        items = self._query(job_id, RESULT_PREFIX, start, limit + 1)
        return [self._result_from_item(job_id, i) for i in items[:limit]], len(items) > limit

    def _query_all(self, **kwargs: Any) -> Iterator[dict]:
        """Every item a Query returns, page after page, as plain values."""
        while True:
            resp = self.client.query(**kwargs)
            yield from (_de(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

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

    # -- stall sweeping -------------------------------------------------------------------
    def ongoing_jobs(self) -> list[tuple[str, str]]:
        """(job_id, progressed_at) of every ongoing job, from the JobsByStatus index (no scan)."""
        index_items = self._query_all(
            TableName=self.table_name,
            IndexName=JOBS_BY_STATUS,
            KeyConditionExpression="#status = :ongoing",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=_ser({":ongoing": "ongoing"}),
        )
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in index_items]
        items = self._batch_get(keys, "pk, job_id, #status, progressed_at, created_at", consistent=True) if keys else {}
        return [
            (i["job_id"], i.get("progressed_at") or i["created_at"])
            for i in items.values()
            if i.get("status") == "ongoing"
        ]

    def finish_stalled(self, job_id: str, reason: str, now: str) -> FinishedJob | None:
        """Finish an ongoing job whose remaining images cannot be ended one by one (no image list):
        they count as failed, so processed reaches total. A no-op on a job that is not ongoing."""
        return self.finish_if_done(job_id) or self.mark_failed(job_id, reason, now)

    def ended_indices(self, job_id: str) -> set[int]:
        """Indices of the job's images that already have a result (keys only, paged)."""
        items = self._query_all(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=_ser({":pk": job_pk(job_id), ":prefix": RESULT_PREFIX}),
            ProjectionExpression="sk",
        )
        return {int(item["sk"][len(RESULT_PREFIX) :]) for item in items}

    # -- item shapes ----------------------------------------------------------------------
    @staticmethod
    def _job_from_item(item: dict) -> Job:
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
        _add_lifecycle_fields(job, item)
        return job

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


def _add_lifecycle_fields(job: Job, item: dict) -> None:
    job.cancelled = item.get("cancelled", 0)
    job.callback_url = item.get("callback_url")
    job.retry_of = item.get("retry_of")
    job.retried_by = item.get("retried_by")
    job.notices_owed = frozenset(item.get("notices_owed") or ())


def _lease_until() -> str:
    return format_utc(datetime.now(UTC) + timedelta(seconds=NOTICE_LEASE_S))
