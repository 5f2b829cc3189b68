"""Job items: creation, reads, the conditional updates that end a job, pause, events and retry links
(listing: job_lists.py).

Job items also carry the keys of three sparse GSIs (no other item has them):
  JobsByClient     client_id / job_list_sk                        one client's jobs, newest first (+ status)
  JobsByCreatedAt  job_list="JOB" / job_list_sk=<created_at>#<id>   every job, newest first (admin)
  JobsByStatus     status / created_at                            jobs of one status (admin, sweeper)
and, while a completion notice is owed, the sparse NoticesDue index key (see notices.py).
Every update that ends a job is conditional on the job being live (`ongoing` or `paused`), so a job
ends exactly once, and
owes its completion notice (the outbox `notices_owed`) with a lease for the caller that ended it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from retail_pulse.adapters.dynamodb.items import from_item, job_from_item, result_item, to_item
from retail_pulse.adapters.dynamodb.keys import (
    ERROR_PREFIX,
    FEED_PAGE_MAX,
    client_entry,
    feed_page_item,
    job_key,
    job_pk,
    label_pk,
)
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.models import LIVE_STATUSES, FailureThreshold, FinishedJob, ImageResult, Job, JobState
from retail_pulse.domain.rules import ERROR_TEXT_LIMIT, MAX_STORE_ERRORS, final_status, notice_lease_until

JOB_LIST = "JOB"  # the one partition of JobsByCreatedAt (a job list needs one ordered partition)
JOBS_BY_CREATED_AT = "JobsByCreatedAt"
JOBS_BY_STATUS = "JobsByStatus"
JOBS_BY_CLIENT = "JobsByClient"
NOTICE_CHANNELS = {"topic", "callback"}  # owed by a job that just ended (the outbox, logic/notify.py)
NOTICE_DUE = "DUE"  # the NoticesDue index's one partition
LIVE = "#status IN (:ongoing, :paused)"  # a live job (paused included) can end, be counted, be cancelled


def ending(extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SET clause and values every ending update shares: finished, owing its notice, leased."""
    values = {":owed": NOTICE_CHANNELS, ":lease": notice_lease_until(), ":due": NOTICE_DUE, **extra}
    return "notices_owed = :owed, notice_lease = :lease, notice_due = :due", values


class JobItems(TableAccess):
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
        threshold: FailureThreshold | None = None,
        labels: dict[str, str] | None = None,
        client_id: str,
        max_concurrency: int | None = None,
    ) -> None:
        """The job item, after the results of images that ended at submit (unknown stores): those are
        counted here (`precounted`), so the stream consumer skips them; they open the job's results
        feed (its first feed page, feed_seq after them). Each label gets a small index item
        (`LABEL#<key>:<value>`, newest first), so a listing by label is one Query."""
        failed = sum(1 for r in ended_at_submit if r.status == "failed")
        succeeded = len(ended_at_submit) - failed
        remaining = total - len(ended_at_submit)
        job: dict[str, Any] = {
            **job_key(job_id),
            "job_id": job_id,
            "status": "ongoing" if remaining else final_status(failed),
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
            "client_id": client_id,  # also the JobsByClient index's partition key
            "callback_url": callback_url,
            "retry_of": retry_of,
            "feed_seq": len(ended_at_submit),
            "labels": labels or None,
            "max_concurrency": max_concurrency,
            "tolerated_failure_percentage": threshold.percentage if threshold else None,
            "tolerated_failure_count": threshold.count if threshold else None,
        }
        if not remaining:  # ended at submit (every store unknown): it owes its notice, to this caller
            job.update(
                {"notices_owed": NOTICE_CHANNELS, "notice_lease": notice_lease_until(), "notice_due": NOTICE_DUE}
            )
        requests = [{"PutRequest": {"Item": to_item(result_item(r))}} for r in ended_at_submit]
        requests += [{"PutRequest": {"Item": to_item(item)}} for item in store_error_items(ended_at_submit)]
        ended_indexes = [r.task.index for r in ended_at_submit]
        for first in range(0, len(ended_indexes), FEED_PAGE_MAX):
            page = feed_page_item(job_id, first, ended_indexes[first : first + FEED_PAGE_MAX], expires_at)
            requests.append({"PutRequest": {"Item": to_item(page)}})
        for key, value in (labels or {}).items():
            label = {
                "pk": label_pk(client_id, key, value),
                "sk": f"{created_at}#{job_id}",
                "job_id": job_id,
                "expires_at": expires_at,
            }
            requests.append({"PutRequest": {"Item": to_item(label)}})
        requests.append({"PutRequest": {"Item": to_item(client_entry(client_id))}})  # admin reports sum clients
        self.batch_write_all(requests)
        self.retrying(
            self.client.put_item,
            TableName=self.table_name,
            Item=to_item(job),
            ConditionExpression="attribute_not_exists(pk)",
        )

    # -- reads ----------------------------------------------------------------------------
    def job_item(self, job_id: str) -> dict | None:
        resp = self.retrying(
            self.client.get_item, TableName=self.table_name, Key=to_item(job_key(job_id)), ConsistentRead=True
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def read_job(self, job_id: str) -> Job | None:
        """The job item alone (consistent read; no store errors)."""
        item = self.job_item(job_id)
        return job_from_item(item) if item else None

    def get_job(self, job_id: str) -> Job | None:
        item = self.job_item(job_id)
        if item is None:
            return None
        job = job_from_item(item)
        if job.failed:
            errors, _ = self.query_page(
                MAX_STORE_ERRORS + 1,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=to_item({":pk": job_pk(job_id), ":prefix": ERROR_PREFIX}),
            )
            job.store_errors = [{"store_id": e["store_id"], "error": e["error"]} for e in errors[:MAX_STORE_ERRORS]]
            job.store_errors_truncated = len(errors) > MAX_STORE_ERRORS
        return job

    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """Status of each job (absent: unknown), one consistent BatchGetItem per 100 jobs."""
        keys = [job_key(j) for j in dict.fromkeys(job_ids)]
        items = self.batch_get(keys, "job_id, #status, notices_owed, max_concurrency", consistent=True)
        return {
            i["job_id"]: JobState(i["job_id"], i["status"], bool(i.get("notices_owed")), i.get("max_concurrency"))
            for i in items.values()
        }

    def batch_get(self, keys: list[dict], projection: str | None, *, consistent: bool) -> dict[str, dict]:
        """Job items by pk (BatchGetItem, unprocessed keys asked again: TableAccess.batch_get_all)."""
        options: dict[str, Any] = {"ConsistentRead": consistent}
        if projection:
            options |= {"ProjectionExpression": projection, "ExpressionAttributeNames": {"#status": "status"}}
        return {job_pk(i["job_id"]): i for i in self.batch_get_all(keys, **options)}

    # -- endings ------------------------------------------------------------------------------
    def _end(self, job_id: str, set_clause: str, values: dict[str, Any], condition: str) -> dict | None:
        """One conditional ending update (retried while refused); the job's new item, or None when
        the condition failed (the job had already ended, or is unknown)."""
        shared, shared_values = ending(values)
        try:
            resp = self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression=f"SET {set_clause}, {shared}",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item({":ongoing": "ongoing", ":paused": "paused", **shared_values}),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return from_item(resp["Attributes"])

    def finish_if_done(self, job_id: str) -> FinishedJob | None:
        """Finishes the job if nothing remains; returns it only when this call was the one that did."""
        job = self.job_item(job_id)
        # A fanned-out job has no total while `accepted` (domain/fanout.py): not done, however empty.
        if not job or job["status"] not in LIVE_STATUSES or job["remaining"] > 0 or job.get("phase") == "accepted":
            return None
        final, now = final_status(job["failed"]), utc_now()
        # A paused job whose last images were already in flight ends too: nothing is left to pause.
        ended = self._end(
            job_id,
            "#status = :final, finished_at = :now",
            {":final": final, ":now": now, ":zero": 0, ":accepted": "accepted"},
            f"{LIVE} AND remaining <= :zero AND (attribute_not_exists(phase) OR phase <> :accepted)",
        )
        return FinishedJob(job_id, final, job["created_at"], now) if ended else None

    def mark_failed(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None:
        """Ends an ongoing job as failed with `reason`: the images not ended yet end with it (counted
        failed, no per-image result). None when it is not ongoing (any more)."""
        ended = self._end(
            job_id,
            "#status = :failed, finished_at = :now, reason = :reason, failed = failed + remaining, remaining = :zero",
            {":failed": "failed", ":now": finished_at, ":reason": reason, ":zero": 0},
            LIVE,
        )
        return FinishedJob(job_id, "failed", ended["created_at"], finished_at) if ended else None

    def fail_early(self, job_id: str, reason: str, finished_at: str) -> FinishedJob | None:
        """Ends a live job `failed` because its failures exceeded its threshold: the images not
        counted yet are `skipped` (processed = total from now on) and, like a cancel's, never
        downloaded, their late results dropped by the stream consumer. None when it was not live."""
        ended = self._end(
            job_id,
            "#status = :failed, finished_at = :now, reason = :reason, skipped = remaining, remaining = :zero",
            {":failed": "failed", ":now": finished_at, ":reason": reason, ":zero": 0},
            LIVE,
        )
        return FinishedJob(job_id, "failed", ended["created_at"], finished_at) if ended else None

    def cancel_job(self, job_id: str, now: str) -> FinishedJob | None:
        """Ends an ongoing job as cancelled: the images not counted yet move from `remaining` to
        `cancelled`, so processed = total from now on. Results of those images that arrive later are
        dropped by the stream consumer (the job is no longer ongoing). None when it was not ongoing."""
        ended = self._end(
            job_id,
            "#status = :cancelled, finished_at = :now, cancelled = remaining, remaining = :zero",
            {":cancelled": "cancelled", ":now": now, ":zero": 0},
            LIVE,
        )
        return FinishedJob(job_id, "cancelled", ended["created_at"], now) if ended else None

    # -- pause and resume ---------------------------------------------------------------------
    def _switch(self, job_id: str, source: str, target: str, extra_set: str, values: dict[str, Any]) -> bool:
        """status source -> target (conditional); False when the job was not `source`."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression=f"SET #status = :target, {extra_set}",
                ConditionExpression="#status = :source",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item({":source": source, ":target": target, **values}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def pause_job(self, job_id: str, now: str) -> bool:
        """ongoing -> paused; False when the job was not ongoing."""
        return self._switch(job_id, "ongoing", "paused", "paused_at = :now", {":now": now})

    def resume_job(self, job_id: str, now: str) -> bool:
        """paused -> ongoing, its progress clock restarted (the stall sweeper measures idleness from
        it: the pause was not a stall); False when the job was not paused."""
        return self._switch(
            job_id, "paused", "ongoing", "progressed_at = :now, resumed_at = :now REMOVE paused_at", {":now": now}
        )

    # -- progress events and the recent-rate window --------------------------------------------
    def claim_event(self, job_id: str, event: str) -> bool:
        """Records `event` as sent on the job (a string set), unless it already was: True only for
        the one caller that recorded it (each progress event goes out at most once per job)."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="ADD events_emitted :event",
                ConditionExpression="attribute_exists(pk) AND NOT contains(events_emitted, :name)",
                ExpressionAttributeValues=to_item({":event": {event}, ":name": event}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def move_rate_mark(self, job_id: str, previous_at: str | None, now: str, processed: int) -> None:
        """Starts a new recent-rate window (the older mark becomes `rate_mark_before`); a no-op when
        another caller moved it since `previous_at` was read."""
        condition = "attribute_not_exists(rate_mark_at)" if previous_at is None else "rate_mark_at = :previous"
        values: dict[str, Any] = {":now": now, ":done": processed}
        if previous_at is not None:
            values[":previous"] = previous_at
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="SET rate_mark_before_at = rate_mark_at, rate_mark_before_processed ="
                " rate_mark_processed, rate_mark_at = :now, rate_mark_processed = :done"
                if previous_at is not None
                else "SET rate_mark_at = :now, rate_mark_processed = :done",
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
            )

    # -- retry links --------------------------------------------------------------------------
    def link_retry(self, job_id: str, retry_job_id: str) -> bool:
        """Marks an ended job as retried by `retry_job_id`; False if it is live (ongoing, paused), unknown or
        already retried."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="SET retried_by = :retry",
                ConditionExpression="attribute_exists(pk) AND NOT #status IN (:ongoing, :paused)"
                " AND attribute_not_exists(retried_by)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_item({":retry": retry_job_id, ":ongoing": "ongoing", ":paused": "paused"}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def unlink_retry(self, job_id: str, retry_job_id: str) -> None:
        """Undoes link_retry when the retry job could not be created."""
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="REMOVE retried_by",
                ConditionExpression="retried_by = :retry",
                ExpressionAttributeValues=to_item({":retry": retry_job_id}),
            )


def store_error_items(results: Sequence[ImageResult]) -> list[dict]:
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
