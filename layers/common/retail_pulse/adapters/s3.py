"""Each job's image list, kept in S3 at submit (one PutObject, no DynamoDB writes), so that the stall
sweeper can end the images that never finished with a result of their own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config

from retail_pulse.domain.messages import task_from_message, task_to_message
from retail_pulse.domain.models import ImageTask

SPEC_PREFIX = "job-specs/"


class S3JobSpecStore:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.client = client or boto3.client("s3", config=Config(retries={"mode": "standard"}))

    def save(self, job_id: str, tasks: Sequence[ImageTask]) -> None:
        # One line per image in the queue's own message format: one way to write a task down.
        body = "\n".join(task_to_message(t) for t in tasks).encode()
        self.client.put_object(
            Bucket=self.bucket, Key=f"{SPEC_PREFIX}{job_id}.jsonl", Body=body, ContentType="application/x-ndjson"
        )

    def load(self, job_id: str) -> list[ImageTask] | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=f"{SPEC_PREFIX}{job_id}.jsonl")
        except self.client.exceptions.NoSuchKey:
            return None
        text = obj["Body"].read().decode()
        return [task_from_message(line) for line in text.splitlines() if line.strip()]
