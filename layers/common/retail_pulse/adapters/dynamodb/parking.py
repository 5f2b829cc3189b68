"""Parked image messages of paused jobs (rules in logic/pause.py): one item per parked batch,
`pk=JOB#<job>#PARK`, `sk=P<first index>#<random>`, holding the batch's messages as the queue had
them. Parking costs one small write per batch of a paused job (never a job item); the messages
leave the queue, so a long pause burns no receives toward the dead-letter queue and loops nothing."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from retail_pulse.adapters.dynamodb.items import from_item, to_item
from retail_pulse.adapters.dynamodb.keys import PARK_SK_PREFIX, park_pk
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.messages import task_from_message, task_to_message
from retail_pulse.domain.models import ImageTask


class ParkedImages(TableAccess):
    def park(self, job_id: str, tasks: Sequence[ImageTask]) -> str:
        first = min(t.index for t in tasks)
        sk = f"{PARK_SK_PREFIX}{first:08d}#{secrets.token_hex(4)}"
        item = {
            "pk": park_pk(job_id),
            "sk": sk,
            "messages": [task_to_message(t) for t in tasks],
            "expires_at": max(t.expires_at for t in tasks) or None,
        }
        self.retrying(self.client.put_item, TableName=self.table_name, Item=to_item(item))
        return sk

    def parked(self, job_id: str) -> list[tuple[str, list[ImageTask]]]:
        items = self.query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_item({":pk": park_pk(job_id)}),
            ConsistentRead=True,
        )
        return [(i["sk"], [task_from_message(m) for m in i.get("messages") or []]) for i in items]

    def unpark(self, job_id: str, keys: Sequence[str]) -> None:
        self.batch_write_all([{"DeleteRequest": {"Key": to_item({"pk": park_pk(job_id), "sk": k})}} for k in keys])

    def lease_parked(
        self, job_id: str, max_images: int, lease_s: int
    ) -> tuple[list[tuple[str, list[ImageTask]]], bool]:
        """Parked batches of the job, leased to this caller for `lease_s` (a batch another replayer
        holds is passed over), until they hold `max_images`; and whether anything is parked at all."""
        now = int(time.time())
        leased: list[tuple[str, list[ImageTask]]] = []
        images, found = 0, False
        for item in self.query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_item({":pk": park_pk(job_id)}),
            ProjectionExpression="sk, lease",
            ConsistentRead=True,
            # Pages of a few pieces: a Query reads whole items (projection or not), and a replay
            # wants a few pieces of a backlog that may hold thousands.
            Limit=min(max_images, 100) + 2,
        ):
            found = True
            if images >= max_images:
                break
            if int(item.get("lease", 0)) > now:
                continue
            try:
                resp = self.retrying(
                    self.client.update_item,
                    TableName=self.table_name,
                    Key=to_item({"pk": park_pk(job_id), "sk": item["sk"]}),
                    UpdateExpression="SET lease = :until",
                    ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(lease) OR lease <= :now)",
                    ExpressionAttributeValues=to_item({":until": now + lease_s, ":now": now}),
                    ReturnValues="ALL_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
            tasks = [task_from_message(m) for m in from_item(resp["Attributes"]).get("messages") or []]
            leased.append((item["sk"], tasks))
            images += len(tasks)
        return leased, found
