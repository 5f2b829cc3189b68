"""Queues of the asynchronous work: the fan-out's and the exports' small JSON messages (with the
visibility a long-running consumer holds its message by), and the image queue fed as a stream by the
fan-out, many SendMessageBatch calls in flight while the next rows are read."""

from __future__ import annotations

import json
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from retail_pulse.adapters.sqs import SQS_BATCH, SqsImageQueue
from retail_pulse.domain.models import ImageTask
from retail_pulse.ports import EnqueueError


class SqsWorkQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", config=Config(retries={"mode": "standard"}))

    def send(self, message: dict) -> None:
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message, separators=(",", ":")))
        except (ClientError, BotoCoreError) as exc:
            raise EnqueueError(f"could not enqueue the work: {exc}") from None

    def hold(self, receipt: str, seconds: int) -> None:
        """Keeps a message being worked on from other consumers for `seconds` (from now)."""
        self.client.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=max(0, min(seconds, 43_200))
        )


class SqsImageStream:
    """`put` images one by one; every SQS_BATCH of them goes out as one SendMessageBatch on a pool of
    `queue.concurrency` threads, at most `depth` batches in flight (the reader waits beyond that).
    `flush` waits for everything put so far; the first batch that could not be sent raises there."""

    def __init__(self, queue: SqsImageQueue, depth: int = 64) -> None:
        self.queue = queue
        self.depth = depth
        self.pool = ThreadPoolExecutor(max_workers=max(1, queue.concurrency), thread_name_prefix="enqueue")
        self.pending: deque[Future] = deque()
        self.batch: list[ImageTask] = []

    def put(self, task: ImageTask) -> None:
        self.batch.append(task)
        if len(self.batch) == SQS_BATCH:
            self._submit()

    def _submit(self) -> None:
        if self.queue.concurrency <= 1:  # one at a time, in the caller's thread
            self.queue._send_batch(self.batch)
            self.batch = []
            return
        self.pending.append(self.pool.submit(self.queue._send_batch, self.batch))
        self.batch = []
        while len(self.pending) > self.depth:
            self.pending.popleft().result()

    def flush(self) -> None:
        if self.batch:
            self._submit()
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
