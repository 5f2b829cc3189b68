"""Shared by the stream tests: a moto table with a stream, and a handler that records its batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from harness import create_keyed_table

from devkit.streams import StreamPump, streams_client

TABLE = "events"


def create_table(view: str = "NEW_IMAGE") -> str:
    """A table keyed like JobsTable (pk, sk) with a stream; returns the stream ARN."""
    create_keyed_table(TABLE, stream_view=view)
    return boto3.client("dynamodb").describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]


def put_images(start: int, count: int, job: str = "JOB#1") -> None:
    ddb = boto3.client("dynamodb")
    for i in range(start, start + count):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": job}, "sk": {"S": f"IMG#{i:05d}"}, "n": {"N": str(i)}})


def image_number(record: dict) -> int:
    return int(record["dynamodb"]["Keys"]["sk"]["S"].removeprefix("IMG#"))


@dataclass
class Recorder:
    """An `invoke` that records every batch; `fail` decides, per call, to raise or report failures."""

    batches: list[list[dict]] = field(default_factory=list)  # every invocation's records
    outcomes: list[bool] = field(default_factory=list)
    fail: Any = None  # callable(call_index, records) -> None | "error" | list of sequence numbers

    def __call__(self, event: dict) -> tuple[bool, Any]:
        records = event["Records"]
        call = len(self.batches)
        self.batches.append(records)
        verdict = self.fail(call, records) if self.fail else None
        self.outcomes.append(verdict is None)
        if verdict == "error":
            return False, {"errorType": "RuntimeError", "errorMessage": "boom"}
        if verdict is not None:
            return True, {"batchItemFailures": [{"itemIdentifier": s} for s in verdict]}
        return True, {"batchItemFailures": []}

    def numbers(self, only_successful: bool = True) -> list[int]:
        return [
            image_number(r)
            for records, ok in zip(self.batches, self.outcomes, strict=True)
            if ok or not only_successful
            for r in records
        ]


def make_pump(arn: str, recorder: Recorder, **kwargs: Any) -> StreamPump:
    return StreamPump(streams_client(), arn, recorder, **kwargs)
