"""Result items: written once per image with a conditional PutItem (no transaction, no job item
touched), read back in submission order, and dropped when they arrive for a job that has ended.

Exactly once: the Put is conditional on the item not existing, so a redelivered or duplicated image
finds its result already there and writes nothing. The counters move when the table's stream
delivers the new item to the stream consumer (logic/counting.py), once per item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from retail_pulse.adapters.dynamodb.items import result_from_item, result_item, to_item
from retail_pulse.adapters.dynamodb.keys import (
    FEED_PAGE_MAX,
    FEED_SK_PREFIX,
    RESULT_BLOCK,
    RESULT_PREFIX,
    RESULT_SHARDS,
    feed_pk,
    feed_sk,
    index_of,
    result_block,
    result_key,
    result_sk,
)
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.models import ImageResult, RecordOutcome
from retail_pulse.ports import StorageRefused

BLOCKS_PER_PAGE = 50  # a results page reads at most this many blocks (5,000 images) before it answers


class ResultItems(TableAccess):
    writers = 10  # a batch's results are written concurrently (one PutItem each)

    def record_results(self, results: Sequence[ImageResult], deadline: float | None = None) -> RecordOutcome:
        """Writes each result unless its image already has one. Each result lands in exactly one of
        the outcome's lists; a write DynamoDB keeps refusing until `deadline` is `refused`."""
        outcome = RecordOutcome()
        if not results:
            return outcome
        with ThreadPoolExecutor(max_workers=min(self.writers, len(results)), thread_name_prefix="result-put") as pool:
            verdicts = list(pool.map(lambda r: self._put(r, deadline), results))
        for result, verdict in zip(results, verdicts, strict=True):
            {"written": outcome.written, "exists": outcome.already_recorded, "refused": outcome.refused}[
                verdict
            ].append(result)
        return outcome

    def _put(self, result: ImageResult, deadline: float | None) -> str:
        try:
            self.retrying(
                self.client.put_item,
                TableName=self.table_name,
                Item=to_item(result_item(result)),
                ConditionExpression="attribute_not_exists(pk)",
                deadline=deadline,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return "exists"
            raise
        except StorageRefused:
            return "refused"
        return "written"

    def delete_results(self, keys: Sequence[tuple[str, int]]) -> None:
        """Removes results of (job, index): those that arrived after their job had ended."""
        self.batch_write_all([{"DeleteRequest": {"Key": to_item(result_key(j, i))}} for j, i in keys])

    # -- reads ----------------------------------------------------------------------------------
    def page_results(
        self, job_id: str, after_index: int | None, limit: int, total: int
    ) -> tuple[list[ImageResult], int | None]:
        """Ended images after `after_index` in submission order: at most `limit`, and the index the next
        page goes on after (None when no image of the job follows). Reads block after block of
        RESULT_BLOCK images (of `total`); a page of a sparse running job may stop early, at most
        BLOCKS_PER_PAGE blocks on, with the position it reached."""
        start = 0 if after_index is None else after_index + 1
        last_block = result_block(max(total, 1) - 1)
        found: list[ImageResult] = []
        block = result_block(start)
        for block in range(result_block(start), min(last_block, result_block(start) + BLOCKS_PER_PAGE - 1) + 1):
            low = max(start, block * RESULT_BLOCK)
            items, _ = self.query_page(
                limit + 1 - len(found),  # one more than a page tells whether another follows
                KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
                ExpressionAttributeValues=to_item(
                    {
                        ":pk": result_key(job_id, low)["pk"],
                        ":low": result_sk(low),
                        ":high": result_sk(block * RESULT_BLOCK + RESULT_BLOCK - 1),
                    }
                ),
            )
            found += [result_from_item(i) for i in items]
            if len(found) > limit:
                return found[:limit], found[limit - 1].task.index
        if block >= last_block:
            return found, None
        return found, (block + 1) * RESULT_BLOCK - 1  # the reading budget ran out: go on from there

    def feed_results(self, job_id: str, position: int, limit: int) -> list[ImageResult]:
        """Up to `limit` results of the job's feed from `position` on, in counted order.

        The feed pages are read with a consistent Query (a page is at most FEED_PAGE_MAX results, so
        the page holding `position` starts at most that far before it), their results with
        consistent BatchGetItems. Pages commit in feed order (adapters/dynamodb/counting.py), so
        what this reads is a prefix of the feed: a later read goes on where this one stopped."""
        indexes: list[int] = []
        low = feed_sk(max(0, position - FEED_PAGE_MAX + 1))
        pages = self.query_all(
            KeyConditionExpression="pk = :pk AND sk >= :low",
            ExpressionAttributeValues=to_item({":pk": feed_pk(job_id), ":low": low}),
            ConsistentRead=True,
        )
        for page in pages:
            first = int(page["sk"][len(FEED_SK_PREFIX) :])
            page_indexes = [int(i) for i in page.get("indexes") or []]
            if first + len(page_indexes) <= position:
                continue
            indexes += page_indexes[max(0, position - first) :]
            if len(indexes) >= limit:
                break
        indexes = indexes[:limit]
        found = self._results_by_index(job_id, indexes)
        return [found[i] for i in indexes if i in found]

    def _results_by_index(self, job_id: str, indexes: list[int]) -> dict[int, ImageResult]:
        items = self.batch_get_all([result_key(job_id, i) for i in indexes], ConsistentRead=True)
        results = (result_from_item(i) for i in items)
        return {r.task.index: r for r in results}

    def all_results(self, job_id: str, projection: str | None = None, **filters: Any) -> Iterator[dict]:
        """Every result item of a job (each of its RESULT_SHARDS partitions, queried in turn)."""
        for shard in range(RESULT_SHARDS):
            kwargs: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
                "ExpressionAttributeValues": to_item({":pk": f"JOB#{job_id}#R{shard:02d}", ":prefix": RESULT_PREFIX}),
            }
            if projection:
                kwargs["ProjectionExpression"] = projection
            if filters:
                kwargs["FilterExpression"] = "#status = :wanted"
                kwargs["ExpressionAttributeNames"] = {"#status": "status"}
                kwargs["ExpressionAttributeValues"].update(to_item({":wanted": filters["status"]}))
            yield from self.query_all(**kwargs)

    def failed_results(self, job_id: str) -> list[ImageResult]:
        """The job's failed images in submission order."""
        found = [result_from_item(i) for i in self.all_results(job_id, status="failed")]
        return sorted(found, key=lambda r: r.task.index)

    def ended_indices(self, job_id: str) -> set[int]:
        """Indices of the job's images that already have a result (keys only)."""
        return {index_of(item["sk"]) for item in self.all_results(job_id, projection="sk")}
