"""The job events topic: completion notices published to SNS (the rules are in logic/notify.py)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


class SnsEventTopic:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self.client = client or boto3.client("sns", config=Config(retries={"mode": "standard"}))

    def publish(self, message: str, subject: str) -> None:
        self.client.publish(TopicArn=self.topic_arn, Message=message, Subject=subject[:99])
