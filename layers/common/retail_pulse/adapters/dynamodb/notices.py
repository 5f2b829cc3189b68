"""The completion-notice outbox on job items (rules in logic/notify.py): a lease to send, channels
taken off once sent, and the sparse NoticesDue index of jobs that still owe one."""

from __future__ import annotations

from retail_pulse.adapters.dynamodb.items import to_item
from retail_pulse.adapters.dynamodb.jobs import NOTICE_DUE
from retail_pulse.adapters.dynamodb.keys import job_id_of, job_key
from retail_pulse.adapters.dynamodb.table import TableAccess
from retail_pulse.domain.clock import utc_now
from retail_pulse.domain.rules import notice_lease_until

NOTICES_DUE = "NoticesDue"


class NoticeItems(TableAccess):
    def claim_notice(self, job_id: str) -> bool:
        """Takes the lease on a job's owed notice (when nobody holds a live one): True if taken."""
        try:
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="SET notice_lease = :lease",
                ConditionExpression="attribute_exists(notices_owed) AND"
                " (attribute_not_exists(notice_lease) OR notice_lease < :now)",
                ExpressionAttributeValues=to_item({":lease": notice_lease_until(), ":now": utc_now()}),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def notice_delivered(self, job_id: str, channel: str) -> None:
        """Takes `channel` off the job's owed notices (the set disappears with its last member, and
        then the job leaves the NoticesDue index)."""
        resp = self.retrying(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item(job_key(job_id)),
            UpdateExpression="DELETE notices_owed :channel",
            ExpressionAttributeValues=to_item({":channel": {channel}}),
            ReturnValues="ALL_NEW",
        )
        if "notices_owed" not in resp.get("Attributes", {}):
            self.retrying(
                self.client.update_item,
                TableName=self.table_name,
                Key=to_item(job_key(job_id)),
                UpdateExpression="REMOVE notice_due",
                ConditionExpression="attribute_not_exists(notices_owed)",
            )

    def notices_due(self, ended_before: str) -> list[str]:
        """Ids of jobs that ended before `ended_before` and still owe a notice (NoticesDue index)."""
        items = self.query_all(
            IndexName=NOTICES_DUE,
            KeyConditionExpression="notice_due = :due AND finished_at < :before",
            ExpressionAttributeValues=to_item({":due": NOTICE_DUE, ":before": ended_before}),
        )
        return [job_id_of(item["pk"]) for item in items]

    def release_notice(self, job_id: str) -> None:
        self.retrying(
            self.client.update_item,
            TableName=self.table_name,
            Key=to_item(job_key(job_id)),
            UpdateExpression="REMOVE notice_lease",
        )
