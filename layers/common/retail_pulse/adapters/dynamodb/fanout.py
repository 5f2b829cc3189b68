"""Job items of jobs fanned out after submit (domain/fanout.py): created `accepted`, moved through
their phases by the fan-out under a lease, and their results read back in submission order a bounded
page at a time (exports, retries of big jobs, the stall sweeper's walk of a manifest).

The lease (`fanout_owner`, `fanout_lease`) makes one invocation at a time work on a job's fan-out:
every checkpoint and phase change is conditional on the job being ongoing and on holding it, so a
cancel (or a second delivery of the fan-out's message) stops the fan-out at its next checkpoint.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from retail_pulse.adapters.dynamodb.items import from_item, manifest_errors, result_from_item, to_item
from retail_pulse.adapters.dynamodb.jobs import JOB_LIST, ending
from retail_pulse.adapters.dynamodb.keys import RESULT_SHARDS, client_entry, index_of, job_key, label_pk, result_sk
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.fanout import ACCEPTED, ENQUEUING, ONGOING, FanOutJob
from retail_pulse.domain.models import FailureThreshold, FinishedJob, ImageResult

RESULT_PAGE = 250  # results of a partition per read: a walk holds two pages of each (16 partitions: 8,000)
PAGE_READERS = 4  # threads reading a walk's next pages
OWNED = "#status = :ongoing AND fanout_owner = :owner"


class FanOutItems(TableAccess):
    def create_fanout_job(
        self,
        job_id: str,
        created_at: str,
        expires_at: int,
        *,
        source: str,
        manifest: dict | None = None,
        callback_url: str | None = None,
        retry_of: str | None = None,
        threshold: FailureThreshold | None = None,
        labels: dict[str, str] | None = None,
        retry_filter: dict | None = None,
        client_id: str,
        max_concurrency: int | None = None,
    ) -> None:
        """The job item, `accepted`: total 0 until the fan-out has checked the whole image list; its
        labels indexed as an inline job's (JobItems.create_job), its failure threshold kept."""
        manifest = manifest or {}
        item = {
            **job_key(job_id),
            "job_id": job_id,
            "status": "ongoing",
            "phase": ACCEPTED,
            "source": source,
            "total": 0,
            "succeeded": 0,
            "failed": 0,
            "remaining": 0,
            "validated": 0,
            "enqueued": 0,
            "created_at": created_at,
            "progressed_at": created_at,
            "expires_at": expires_at,
            "job_list": JOB_LIST,
            "job_list_sk": f"{created_at}#{job_id}",
            "client_id": client_id,  # also the JobsByClient index's partition key
            "callback_url": callback_url,
            "retry_of": retry_of,
            "manifest_key": manifest.get("key"),
            "manifest_version": manifest.get("version"),
            "manifest_bytes": manifest.get("bytes"),
            "manifest_format": manifest.get("format"),
            "labels": labels or None,
            "tolerated_failure_percentage": threshold.percentage if threshold else None,
            "tolerated_failure_count": threshold.count if threshold else None,
            "retry_filter": retry_filter or None,
            "max_concurrency": max_concurrency,
        }
        label_items = [
            {
                "pk": label_pk(client_id, key, value),
                "sk": f"{created_at}#{job_id}",
                "job_id": job_id,
                "expires_at": expires_at,
            }
            for key, value in (labels or {}).items()
        ]
        # At most 10 labels and the client's entry (admin reports sum clients); before the job item,
        # as at an inline submit.
        entries: list[dict] = [*label_items, client_entry(client_id)]
        for entry in entries:
            self.retrying(self.client.put_item, TableName=self.table_name, Item=to_item(entry))
        self.retrying(
            self.client.put_item,
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def fanout_job(self, job_id: str) -> FanOutJob | None:
        resp = self.retrying(
            self.client.get_item, TableName=self.table_name, Key=to_item(job_key(job_id)), ConsistentRead=True
        )
        if "Item" not in resp:
            return None
        item = from_item(resp["Item"])
        return FanOutJob(
            job_id=item["job_id"],
            status=item["status"],
            phase=item.get("phase"),
            source=item.get("source"),
            created_at=item["created_at"],
            expires_at=item.get("expires_at", 0),
            total=item.get("total", 0),
            manifest_key=item.get("manifest_key"),
            manifest_version=item.get("manifest_version"),
            manifest_format=item.get("manifest_format"),
            position=item.get("fanout_pos"),
            validated=item.get("validated", 0),
            enqueued=item.get("enqueued", 0),
            errors=manifest_errors(item),
            error_count=item.get("manifest_error_count", 0),
            callback_url=item.get("callback_url"),
            retry_of=item.get("retry_of"),
            retry_filter=item.get("retry_filter"),
            client_id=item.get("client_id"),
        )

    def _update(self, job_id: str, expression: str, condition: str, values: dict[str, Any]) -> dict | None:
        """One conditional update of the job item; its new attributes, or None when the condition failed."""
        try:
            resp = self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#status": "status",
                    **({"#total": "total"} if "#total" in expression else {}),
                },
                ExpressionAttributeValues=to_item({":ongoing": "ongoing", **values}),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return from_item(resp["Attributes"])

    def claim_fanout(self, job_id: str, owner: str, until: str) -> bool:
        return (
            self._update(
                job_id,
                "SET fanout_owner = :owner, fanout_lease = :until",
                "#status = :ongoing AND phase IN (:accepted, :enqueuing) AND (attribute_not_exists(fanout_lease)"
                " OR fanout_lease < :now OR fanout_owner = :owner)",
                {":owner": owner, ":until": until, ":now": utc_now(), ":accepted": ACCEPTED, ":enqueuing": ENQUEUING},
            )
            is not None
        )

    def release_fanout(self, job_id: str, owner: str) -> None:
        with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="REMOVE fanout_owner, fanout_lease",
                ConditionExpression="fanout_owner = :owner",
                ExpressionAttributeValues=to_item({":owner": owner}),
            )

    def checkpoint_fanout(
        self,
        job_id: str,
        owner: str,
        position: str,
        *,
        validated: int | None = None,
        enqueued: int | None = None,
        errors: list[dict] | None = None,
        error_count: int | None = None,
    ) -> bool:
        sets: dict[str, object] = {
            "fanout_pos": position,
            "progressed_at": utc_now(),
            "validated": validated,
            "enqueued": enqueued,
        }
        sets |= {"manifest_errors": errors or None, "manifest_error_count": error_count or None}
        sets = {name: value for name, value in sets.items() if value is not None}
        expression = "SET " + ", ".join(f"{name} = :{name}" for name in sets)
        values = {f":{name}": value for name, value in sets.items()} | {":owner": owner}
        return self._update(job_id, expression, OWNED, values) is not None

    def start_enqueuing(self, job_id: str, owner: str, total: int, callback_url: str | None) -> bool:
        expression = (
            "SET phase = :enqueuing, #total = :total, remaining = :total, validated = :total, enqueued = :zero,"
            " progressed_at = :now" + (", callback_url = :callback" if callback_url else "") + " REMOVE fanout_pos"
        )
        values = {":enqueuing": ENQUEUING, ":total": total, ":zero": 0, ":now": utc_now(), ":owner": owner}
        if callback_url:
            values[":callback"] = callback_url
        values[":accepted"] = ACCEPTED
        return self._update(job_id, expression, f"{OWNED} AND phase = :accepted", values) is not None

    def finish_enqueuing(self, job_id: str, owner: str, enqueued: int, missing: int = 0) -> bool:
        """`missing`: images counted in total that the list no longer holds (a retried job's failed
        results can only shrink): they leave total and remaining, so the job still ends exactly."""
        return (
            self._update(
                job_id,
                "SET phase = :ongoing_phase, enqueued = :enqueued, progressed_at = :now,"
                " #total = #total - :missing, remaining = remaining - :missing REMOVE fanout_pos",
                f"{OWNED} AND phase = :enqueuing",
                {":ongoing_phase": ONGOING, ":enqueued": enqueued, ":now": utc_now(), ":owner": owner}
                | {":enqueuing": ENQUEUING, ":missing": missing},
            )
            is not None
        )

    def refuse_manifest(
        self, job_id: str, owner: str, *, errors: list[dict], error_count: int, reason: str, finished_at: str
    ) -> FinishedJob | None:
        shared, shared_values = ending({})
        ended = self._update(
            job_id,
            "SET #status = :failed, finished_at = :now, reason = :reason, manifest_errors = :errors,"
            f" manifest_error_count = :count, {shared} REMOVE fanout_pos, fanout_owner, fanout_lease",
            f"{OWNED} AND phase = :accepted",
            {":failed": "failed", ":now": finished_at, ":reason": reason, ":errors": errors or None}
            | {":count": error_count, ":owner": owner, ":accepted": ACCEPTED}
            | shared_values,
        )
        return FinishedJob(job_id, "failed", ended["created_at"], finished_at) if ended else None

    # -- a job's results in submission order ---------------------------------------------------
    def iter_results(
        self, job_id: str, *, start: int = 0, status: str | None = None, keys_only: bool = False
    ) -> Iterator[ImageResult | int]:
        """Results are spread over RESULT_SHARDS partitions in blocks (keys.result_pk); each partition
        holds its blocks in index order, so merging the partitions' ordered reads gives submission
        order. Each partition is read RESULT_PAGE items at a time, its next page read (on a few
        threads) while the merge takes from the one before: the walk waits for DynamoDB only when
        the merge outruns it."""
        with ThreadPoolExecutor(max_workers=PAGE_READERS, thread_name_prefix="results") as readers:
            # Each walk yields only keys (ints) or only results: merged by the same order.
            walks: list[Generator[Any, None, None]] = [
                self._partition(readers, job_id, shard, start, status, keys_only) for shard in range(RESULT_SHARDS)
            ]
            try:
                if keys_only:
                    yield from heapq.merge(*walks)
                else:
                    yield from heapq.merge(*walks, key=lambda r: r.task.index)
            finally:
                for walk in walks:
                    walk.close()  # cancels the pages read ahead

    def _partition(  # noqa: PLR0917 - one partition's walk, as iter_results asked for it
        self, readers: ThreadPoolExecutor, job_id: str, shard: int, start: int, status: str | None, keys_only: bool
    ) -> Generator[ImageResult | int, None, None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND sk >= :low",
            "ExpressionAttributeValues": to_item({":pk": f"JOB#{job_id}#R{shard:02d}", ":low": result_sk(start)}),
            "Limit": RESULT_PAGE,
        }
        if keys_only:
            kwargs["ProjectionExpression"] = "sk"
        if status:
            kwargs["FilterExpression"] = "#status = :wanted"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            kwargs["ExpressionAttributeValues"].update(to_item({":wanted": status}))
        page: Future | None = readers.submit(self._result_page, kwargs, keys_only)
        try:
            while page is not None:
                results, last_key = page.result()
                page = None
                if last_key is not None:
                    page = readers.submit(self._result_page, {**kwargs, "ExclusiveStartKey": last_key}, keys_only)
                yield from results
        finally:
            if page is not None:
                page.cancel()

    def _result_page(self, kwargs: dict[str, Any], keys_only: bool) -> tuple[list[Any], dict | None]:
        """One page of a partition, as results (the raw items, several times their size, let go here)."""
        resp = self.retrying(self.client.query, **kwargs)
        items = resp.get("Items", [])
        results = (
            [index_of(i["sk"]["S"]) for i in items] if keys_only else [result_from_item(from_item(i)) for i in items]
        )
        return results, resp.get("LastEvaluatedKey")
