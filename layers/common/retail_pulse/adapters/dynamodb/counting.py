"""The stream consumer's writes: counters of jobs and reports moved by a run of streamed results, in
one TransactWriteItems that also moves the stream shard's watermark (`COUNTED#<shard>`).

Exactly once: the transaction is conditional on the watermark being below the run's first sequence
number, and records of one stream shard arrive in order, so a run is counted once however often
Lambda redelivers it (a retry after a crash finds the watermark moved and skips what was counted).
Each job's update is conditional on the job being live (`ongoing` or `paused`): a run that meets an
ended job is refused whole, and the consumer counts it again without that job's results (see
logic/counting.py). The same transaction appends the run's results to each job's results feed.
Report counters go to one of REPORT_SHARDS partitions per client and area, chosen by the stream shard, so
consumers of different shards rarely hold the same item; a report sums its shards. A report item's
`last_visit` (a maximum) moves in the same transaction, conditional on the date read just before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from retail_pulse.adapters.dynamodb.items import from_item, result_from_item, to_item
from retail_pulse.adapters.dynamodb.jobs import store_error_items
from retail_pulse.adapters.dynamodb.keys import (
    AREA_SK,
    REPORT_SHARDS,
    counted_key,
    feed_page_item,
    job_key,
    padded_sequence,
    report_pk,
    stable_shard,
    store_sk,
)
from retail_pulse.adapters.dynamodb.table import TableAccess, cancellation_codes
from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.models import (
    LIVE_STATUSES,
    Applied,
    ImageResult,
    JobRun,
    ReportCounters,
    StreamedResult,
    Tally,
)

COUNTED_TTL_S = 3 * 86_400  # stream records live 24 h: a shard's watermark is not needed after that
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit per TransactWriteItems
LAST_VISIT_OWNER = "last visit"  # an item whose failed condition means: a last visit moved, read again
FEED_TTL_S = 30 * 86_400  # a feed page whose results carried no expiry (older results) lives 30 days


class ResultCounting(TableAccess):
    max_updates = MAX_TRANSACTION_ITEMS - 1  # one item of each transaction is the watermark
    # Job items by key (JobItems.batch_get: the repository assembles both on one table).
    batch_get: Callable[..., dict[str, dict]]

    def counted_through(self, stream_shard: str) -> str | None:
        """The last sequence number of the shard whose result is counted (padded), or None."""
        resp = self.retrying(
            self.client.get_item, TableName=self.table_name, Key=to_item(counted_key(stream_shard)), ConsistentRead=True
        )
        return from_item(resp["Item"]).get("seq") if "Item" in resp else None

    def apply(self, stream_shard: str, first_seq: str, last_seq: str, tally: Tally, deadline: float) -> Applied:
        """One transaction: the watermark, each job's counters and results-feed page, the reports.

        The feed: each job's run takes the next `n` positions of its feed (`feed_seq`, read just
        before, consistently), the job update conditional on `feed_seq` being what was read. Runs of
        one job from different stream shards therefore commit one after the other in feed order, so
        a reader of the feed pages (consistent Query) never sees a later page without the earlier
        ones: no gaps. A job whose condition failed because another run moved its feed first is read
        again and the transaction retried; one that is no longer live is reported in `ended_jobs`."""
        # Another shard's run of the job committed first (or moved a report's last visit): back off
        # as for a conflict (a refused condition is charged like a write: racing again costs capacity).
        pauses = self.policy.delays(deadline)
        shard = stable_shard(stream_shard, REPORT_SHARDS)
        while True:
            states = self._feed_states(sorted(tally.jobs), deadline)
            ended = {job_id for job_id in tally.jobs if states.get(job_id, (None, 0))[0] not in LIVE_STATUSES}
            if ended:
                return Applied(False, ended_jobs=frozenset(ended))
            moves = self._last_visit_moves(_report_keys(tally, shard), deadline)
            outcome = self._transact(stream_shard, first_seq, last_seq, tally, states, moves, deadline)
            if outcome is not None:
                return outcome
            time.sleep(self.next_pause(pauses, "the results feed of a job kept moving under this run"))

    def _feed_states(self, job_ids: list[str], deadline: float) -> dict[str, tuple[str, int]]:
        """(status, feed_seq) of each job, read consistently (absent: unknown job)."""
        if not job_ids:
            return {}
        items = self.batch_get([job_key(j) for j in job_ids], "job_id, #status, feed_seq", consistent=True)
        return {i["job_id"]: (i["status"], int(i.get("feed_seq", 0))) for i in items.values()}

    def _transact(  # noqa: PLR0917 - one transaction's parts
        self,
        stream_shard: str,
        first_seq: str,
        last_seq: str,
        tally: Tally,
        states: dict[str, tuple[str, int]],
        moves: dict[tuple[str, str], tuple[str | None, str]],
        deadline: float,
    ) -> Applied | None:
        """None when only feed positions or last visits moved under it (read again and retry).
        `moves`: report item key -> (its last visit as read, the later one this run sets)."""
        now = utc_now()
        shard = stable_shard(stream_shard, REPORT_SHARDS)
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": to_item(counted_key(stream_shard)),
                    "UpdateExpression": "SET seq = :last, expires_at = :exp",
                    "ConditionExpression": "attribute_not_exists(seq) OR seq < :first",
                    "ExpressionAttributeValues": to_item(
                        {
                            ":last": padded_sequence(last_seq),
                            ":first": padded_sequence(first_seq),
                            ":exp": int(time.time()) + COUNTED_TTL_S,
                        }
                    ),
                }
            }
        ]
        owners: list[str | None] = [None]
        for job_id, (ok, bad) in sorted(tally.jobs.items()):
            run = tally.runs.get(job_id) or JobRun()
            seq = states[job_id][1]
            feed_condition = "(attribute_not_exists(feed_seq) OR feed_seq = :seq)" if seq == 0 else "feed_seq = :seq"
            values = {
                ":ok": ok,
                ":bad": bad,
                ":done": -(ok + bad),
                ":ongoing": "ongoing",
                ":paused": "paused",
                ":now": now,
                ":seq": seq,
                ":next": seq + len(run.indexes),
                ":gbms": run.gb_ms,
                ":req": run.request_milli,
                ":bytes": run.bytes_downloaded,
                ":start": run.started_at or now,
            }
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": to_item(job_key(job_id)),
                        # progressed_at: when the job last moved (the stall sweeper reads it).
                        "UpdateExpression": "ADD succeeded :ok, failed :bad, remaining :done, gb_ms :gbms,"
                        " request_milli :req, bytes_downloaded :bytes SET progressed_at = :now,"
                        " feed_seq = :next, started_at = if_not_exists(started_at, :start)",
                        # Counted while ongoing or paused (results of batches in flight when it paused).
                        "ConditionExpression": f"#status IN (:ongoing, :paused) AND {feed_condition}",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": to_item(values),
                    }
                }
            )
            owners.append(job_id)
            if run.indexes:
                page = feed_page_item(job_id, seq, run.indexes, run.expires_at or int(time.time()) + FEED_TTL_S)
                items.append({"Put": {"TableName": self.table_name, "Item": to_item(page)}})
                owners.append(None)
        for (client, area), c in sorted(tally.areas.items()):
            key = (report_pk(client, area, shard), AREA_SK)
            items.append(_counter_update(self.table_name, key, c, {"area": area}, moves.get(key)))
            owners.append(LAST_VISIT_OWNER if key in moves else None)
        for (client, area, store_id), c in sorted(tally.stores.items()):
            key = (report_pk(client, area, shard), store_sk(store_id))
            fields = {"area": area, "store_id": store_id}
            items.append(_counter_update(self.table_name, key, c, fields, moves.get(key)))
            owners.append(LAST_VISIT_OWNER if key in moves else None)
        try:
            self.retrying(self.client.transact_write_items, TransactItems=items, deadline=deadline)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                return Applied(False, counted_before=True)
            if not any(o and c == "ConditionalCheckFailed" for o, c in zip(owners, codes, strict=False)):
                raise
            return None  # a job ended, its feed or a last visit moved: apply() reads them again
        return Applied(True)

    def record_store_errors(self, results: Sequence[ImageResult], deadline: float) -> None:
        """The first failure of each store in each job (a store's earlier error is kept)."""
        for e in store_error_items(results):
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item({"pk": e["pk"], "sk": e["sk"]}),
                UpdateExpression="SET #error = if_not_exists(#error, :error), store_id = :store,"
                " job_id = :job, expires_at = :exp",
                ExpressionAttributeNames={"#error": "error"},
                ExpressionAttributeValues=to_item(
                    {":error": e["error"], ":store": e["store_id"], ":job": e["job_id"], ":exp": e["expires_at"]}
                ),
                deadline=deadline,
            )

    def _last_visit_moves(
        self, wanted: dict[tuple[str, str], str], deadline: float
    ) -> dict[tuple[str, str], tuple[str | None, str]]:
        """The report items whose `last_visit` this run moves forward: key -> (as read, the new date).
        The move rides in the counting transaction, conditional on the value read, so a maximum
        needs no write of its own (it was one UpdateItem per store per run: 0.1 WCU per image)."""
        current = self._last_visits(list(wanted), deadline)
        moves: dict[tuple[str, str], tuple[str | None, str]] = {}
        for key, day in wanted.items():
            known = current.get(key)
            if known is None or known < day:
                moves[key] = (known, day)
        return moves

    def _last_visits(self, keys: list[tuple[str, str]], deadline: float) -> dict[tuple[str, str], str | None]:
        items = self.batch_get_all(
            [{"pk": pk, "sk": sk} for pk, sk in keys],
            deadline,
            ProjectionExpression="pk, sk, last_visit",
            ConsistentRead=True,  # the transaction's condition is on what this read
        )
        return {(i["pk"], i["sk"]): i.get("last_visit") for i in items}


def streamed_results(event: dict) -> tuple[str, list[StreamedResult]]:
    """The stream shard of a Lambda DynamoDB stream event and its INSERTs of result items, in order.

    Lambda names the shard (`shardId`) only in events of a mapping with a tumbling window: the
    template gives the consumer's mapping one for that reason (each batch holds one shard's records)."""
    shard = event.get("shardId")
    if not shard:
        raise ValueError("the stream event names no shardId: the event source mapping needs TumblingWindowInSeconds")
    out = []
    for record in event.get("Records") or []:
        change = record.get("dynamodb") or {}
        image = change.get("NewImage")
        if record.get("eventName") != "INSERT" or not image:
            continue
        item = from_item(image)
        if not str(item.get("sk", "")).startswith("IMG#"):
            continue
        out.append(StreamedResult(change["SequenceNumber"], result_from_item(item)))
    return shard, out


def _report_keys(tally: Tally, shard: int) -> dict[tuple[str, str], str]:
    """Report item key -> the latest visit date of the run's results counted into it."""
    wanted: dict[tuple[str, str], str] = {}
    for (client, area), c in tally.areas.items():
        if c.last_visit:
            wanted[(report_pk(client, area, shard), AREA_SK)] = c.last_visit
    for (client, area, store_id), c in tally.stores.items():
        if c.last_visit:
            wanted[(report_pk(client, area, shard), store_sk(store_id))] = c.last_visit
    return wanted


def _counter_update(
    table_name: str,
    key: tuple[str, str],
    c: ReportCounters,
    fields: dict[str, str],
    move: tuple[str | None, str] | None,
) -> dict:
    """A report item's counters added; with `move` (as read, new date) its last visit moved forward,
    on condition it is still what was read (another shard's run may have moved it since)."""
    # Every attribute through a name placeholder: no DynamoDB reserved word can break it.
    adds = {"images": c.images, "failed": c.failed, "visits": c.visits, "duration_ms": c.duration_ms}
    adds["attempts"] = c.attempts
    sets = dict(fields)
    if move is not None:
        sets["last_visit"] = move[1]
    names = {f"#{n}": n for n in [*sets, *adds]}
    add = ", ".join(f"#{n} :{n}" for n in adds)
    values: dict[str, Any] = {f":{n}": v for n, v in [*sets.items(), *adds.items()]}
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": to_item({"pk": key[0], "sk": key[1]}),
        "UpdateExpression": "SET " + ", ".join(f"#{n} = :{n}" for n in sets) + " ADD " + add,
    }
    if move is not None:
        known = move[0]
        if known is None:
            update["ConditionExpression"] = "attribute_not_exists(#last_visit)"
        else:
            update["ConditionExpression"] = "#last_visit = :known"
            values[":known"] = known
    update["ExpressionAttributeNames"] = names
    update["ExpressionAttributeValues"] = to_item(values)
    return {"Update": update}
