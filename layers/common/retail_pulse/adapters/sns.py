"""The job events topic: completion notices published to SNS (the rules are in logic/notify.py)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


class SnsEventTopic:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self.client = client or boto3.client("sns", config=Config(retries={"mode": "standard"}))

    def publish(self, message: str, subject: str, client_id: str | None = None) -> None:
        # The job's client as a message attribute: a subscription's filter policy keeps one client's.
        attributes = {"client_id": {"DataType": "String", "StringValue": client_id}} if client_id else {}
        self.client.publish(
            TopicArn=self.topic_arn, Message=message, Subject=subject[:99], MessageAttributes=attributes
        )
