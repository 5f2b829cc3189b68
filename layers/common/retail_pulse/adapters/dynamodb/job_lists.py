"""Job lists: a client's jobs (an admin's: every client's) newest first (of one status, or one
label), paged; and the ongoing jobs the stall sweeper walks. Reads of the job items' sparse indexes (see jobs.py)."""

from __future__ import annotations

from typing import Any

from retail_pulse.adapters.dynamodb.items import job_from_item, to_item
from retail_pulse.adapters.dynamodb.jobs import JOB_LIST, JOBS_BY_CLIENT, JOBS_BY_CREATED_AT, JOBS_BY_STATUS
from retail_pulse.adapters.dynamodb.keys import (
    JOB_SK,
    job_key,
    job_pk,
    label_pk,
)
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.models import Job

# A client's listing of one status filters its own index partition: a page reads at most this many
# index entries (CLIENT_READS_PER_PAGE pages of CLIENT_READ_PAGE) before it answers, maybe short.
CLIENT_READ_PAGE = 500
CLIENT_READS_PER_PAGE = 4


class JobLists(TableAccess):
    # Reads job items through JobItems.batch_get (the repository assembles both).
    batch_get: Any

    # -- listing and sweeping -----------------------------------------------------------------
    def page_jobs(
        self,
        status: str | None,
        after: dict | None,
        limit: int,
        *,
        client_id: str | None,
        label: tuple[str, str] | None = None,
    ) -> tuple[list[Job], dict | None]:
        """Jobs newest first (of `status` if given; of client `client_id`, else every client's): at
        most `limit`, and the cursor of the next page. A client's listing reads its own partition of
        JobsByClient only (of one status: filtered there, so a page may come short with a cursor).
        Raises ValueError on a cursor this method did not hand out for the same listing."""
        if label is not None:
            if client_id is None:
                raise ValueError("a label lists one client's jobs")
            return self._page_labelled(client_id, label, status, after, limit)
        if client_id is not None:
            index, key_names, partition = JOBS_BY_CLIENT, ("client_id", "job_list_sk"), client_id
        elif status is None:
            index, key_names, partition = JOBS_BY_CREATED_AT, ("job_list", "job_list_sk"), JOB_LIST
        else:
            index, key_names, partition = JOBS_BY_STATUS, ("status", "created_at"), status
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": "#part = :part",
            "ExpressionAttributeNames": {"#part": key_names[0]},
            "ExpressionAttributeValues": to_item({":part": partition}),
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
            kwargs["ExclusiveStartKey"] = to_item(after)
        if client_id is not None and status is not None:
            # The client's own partition only, filtered by status (projected into the index), with
            # a reading budget: a page may come short, with a cursor.
            kwargs["FilterExpression"] = "#status = :status"
            kwargs["ExpressionAttributeNames"]["#status"] = "status"
            kwargs["ExpressionAttributeValues"].update(to_item({":status": status}))
            kwargs.update(read_size=CLIENT_READ_PAGE, max_reads=CLIENT_READS_PER_PAGE)
        # One more than a page tells whether another follows.
        keys, last_read = self.query_page(limit + 1, **kwargs)
        page, more = keys[:limit], len(keys) > limit
        found = self.batch_get([{"pk": k["pk"], "sk": JOB_SK} for k in page], None, consistent=False)
        jobs = []
        for key in page:
            item = found.get(key["pk"])
            # The index is eventually consistent: a job may have changed status (or expired) since.
            if item is None or (status is not None and item["status"] != status):
                continue
            jobs.append(job_from_item(item))
        cursor = None
        if more and page:
            cursor = {name: page[-1][name] for name in ("pk", "sk", *key_names)}
        elif last_read is not None:  # the reading budget ran out first: go on from the last entry read
            cursor = {name: last_read[name] for name in ("pk", "sk", *key_names)}
        return jobs, cursor

    def _page_labelled(
        self, client_id: str, label: tuple[str, str], status: str | None, after: dict | None, limit: int
    ) -> tuple[list[Job], dict | None]:
        """A client's jobs with a label, newest first, from the label's index items (one Query, no
        scan); a `status` filters the page (which may then hold fewer than `limit` jobs)."""
        partition = label_pk(client_id, *label)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :part",
            "ExpressionAttributeValues": to_item({":part": partition}),
            "ScanIndexForward": False,
        }
        if after is not None:
            valid = (
                isinstance(after, dict)
                and set(after) == {"pk", "sk"}
                and after["pk"] == partition
                and isinstance(after["sk"], str)
                and bool(after["sk"])
            )
            if not valid:
                raise ValueError("cursor not from this listing")
            kwargs["ExclusiveStartKey"] = to_item(after)
        keys, _ = self.query_page(limit + 1, **kwargs)
        page, more = keys[:limit], len(keys) > limit
        found = self.batch_get([job_key(k["job_id"]) for k in page], None, consistent=False)
        jobs = []
        for key in page:
            item = found.get(job_pk(key["job_id"]))
            if item is None or (status is not None and item["status"] != status):
                continue
            jobs.append(job_from_item(item))
        cursor = {"pk": page[-1]["pk"], "sk": page[-1]["sk"]} if more and page else None
        return jobs, cursor

    def ongoing_jobs(self) -> list[tuple[str, str]]:
        """(job_id, progressed_at) of every ongoing job, from the JobsByStatus index (no scan)."""
        index_items = self.query_all(
            IndexName=JOBS_BY_STATUS,
            KeyConditionExpression="#status = :ongoing",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item({":ongoing": "ongoing"}),
        )
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in index_items]
        items = self.batch_get(keys, "pk, job_id, #status, progressed_at, created_at", consistent=True) if keys else {}
        return [
            (i["job_id"], i.get("progressed_at") or i["created_at"])
            for i in items.values()
            if i.get("status") == "ongoing"
        ]
