"""Counters of images in flight, one item per client (or per job with a `max_concurrency`), and
the parked images waiting on them (rules in domain/quota.py).

  pk=SLOTS#<owner>  sk=SLOTS   n: images claimed and not released;  e<minute>: of those, claimed in
                                that minute;  w<job id>: a marker, that job has images parked here

A claim is one conditional UpdateItem (`n <= limit - count`), a release one unconditional ADD (on
condition its minute was not taken back): two writes of a small item per batch and owner, about
0.2 WCU per image. One owner's counter is one partition key: at 1,000 WCU/s it admits about 500
batches (5,000 images) a second, far above what one client's quota lets run at once.
"""

from __future__ import annotations

import secrets
import time

from retail_pulse.adapters.dynamodb.items import from_item, to_item
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.quota import SlotState

SLOTS_PREFIX = "SLOTS#"
SLOTS_TTL_S = 30 * 86_400  # a counter unclaimed for 30 days holds nothing worth keeping
SLOTS_SK = "SLOTS"


def slots_key(owner: str) -> dict[str, str]:
    return {"pk": f"{SLOTS_PREFIX}{owner}", "sk": SLOTS_SK}


def _state(item: dict | None) -> SlotState:
    if not item:
        return SlotState()
    epochs = {int(k[1:]): int(v) for k, v in item.items() if k[:1] == "e" and k[1:].isdigit()}
    waiting = {k[1:]: str(v) for k, v in item.items() if k[:1] == "w" and len(k) > 1}
    return SlotState(int(item.get("n", 0)), epochs, waiting)


class InFlightSlots(TableAccess):
    def claim(self, owner: str, count: int, limit: int, epoch: int) -> bool:
        """`count` more images in flight, if that keeps the owner within `limit`."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(slots_key(owner)),
                # expires_at: a job's counter (or an idle client's) goes with the table's TTL.
                UpdateExpression="ADD n :k, #e :k SET expires_at = :exp",
                ConditionExpression="attribute_not_exists(n) OR n <= :room",
                ExpressionAttributeNames={"#e": f"e{epoch}"},
                ExpressionAttributeValues=to_item(
                    {":k": count, ":room": limit - count, ":exp": int(time.time()) + SLOTS_TTL_S}
                ),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, owner: str, count: int, epoch: int) -> SlotState:
        """The claim given back; the counter as it is after. A claim whose minute was taken back
        (domain/quota.py: stale) is not subtracted twice."""
        names = {"#e": f"e{epoch}"}
        try:
            resp = self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(slots_key(owner)),
                UpdateExpression="ADD n :k, #e :k",
                ConditionExpression="attribute_exists(#e)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item({":k": -count}),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return self.slot_state(owner)
        return _state(from_item(resp["Attributes"]))

    def slot_state(self, owner: str) -> SlotState:
        resp = self.retrying(
            self.client.get_item, TableName=self.table_name, Key=to_item(slots_key(owner)), ConsistentRead=True
        )
        return _state(from_item(resp["Item"]) if "Item" in resp else None)

    def take_back(self, owner: str, epoch: int, count: int) -> bool:
        """A minute's claims taken back (released for invocations that never released them; a
        minute whose claims all ended is dropped the same way, with count 0). False when it moved."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(slots_key(owner)),
                UpdateExpression="ADD n :back REMOVE #e",
                ConditionExpression="#e = :count",
                ExpressionAttributeNames={"#e": f"e{epoch}"},
                ExpressionAttributeValues=to_item({":back": -count, ":count": count}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_waiting(self, owner: str, job_id: str) -> None:
        """The job has images parked on this owner (a fresh marker each time: see clear_waiting)."""
        self.retrying(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item(slots_key(owner)),
            UpdateExpression="SET #w = :marker",
            ExpressionAttributeNames={"#w": f"w{job_id}"},
            ExpressionAttributeValues=to_item({":marker": secrets.token_hex(8)}),
        )

    def clear_waiting(self, owner: str, job_id: str, marker: str) -> None:
        """The job's mark removed, unless a parker marked it again since it was read (its images
        were parked after the replayer looked: the mark must stay)."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(slots_key(owner)),
                UpdateExpression="REMOVE #w",
                ConditionExpression="#w = :marker",
                ExpressionAttributeNames={"#w": f"w{job_id}"},
                ExpressionAttributeValues=to_item({":marker": marker}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return
