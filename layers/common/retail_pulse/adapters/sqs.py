"""The image queue: one message per image, sent with SendMessageBatch in parallel."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from retail_pulse.domain.messages import task_to_message
from retail_pulse.domain.models import ImageTask
from retail_pulse.ports import EnqueueError

SQS_BATCH = 10
ATTEMPTS = 5


class SqsImageQueue:
    def __init__(self, queue_url: str, concurrency: int, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.concurrency = concurrency
        self.client = client or boto3.client(
            "sqs", config=Config(retries={"mode": "standard"}, max_pool_connections=max(10, concurrency))
        )

    def send(self, tasks: Sequence[ImageTask]) -> None:
        batches = [tasks[i : i + SQS_BATCH] for i in range(0, len(tasks), SQS_BATCH)]
        if self.concurrency <= 1 or len(batches) <= 1:
            for batch in batches:
                self._send_batch(batch)
            return
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        try:
            for future in [pool.submit(self._send_batch, b) for b in batches]:
                future.result()  # re-raises the first EnqueueError
        finally:
            # On the first failure, the batches not started yet are dropped: the job is failed at once
            # instead of after thousands more doomed attempts (API Gateway allows 29 s in all).
            pool.shutdown(wait=True, cancel_futures=True)

    def _send_batch(self, batch: Sequence[ImageTask]) -> None:
        entries = {
            str(i): {
                "Id": str(i),
                "MessageBody": task_to_message(t),
                # Fair queues: one message group per client (per job for messages of jobs from before
                # clients), so one client's big jobs cannot starve another client's small one.
                "MessageGroupId": t.client_id or t.job_id,
            }
            for i, t in enumerate(batch)
        }
        last_error = "unknown"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            try:
                resp = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=list(entries.values()))
            except (ClientError, BotoCoreError) as exc:
                last_error = str(exc)
                continue
            failed = resp.get("Failed") or []
            if not failed:
                return
            last_error = "; ".join(f"{f.get('Code')}: {f.get('Message', '')}" for f in failed)
            if any(f.get("SenderFault") for f in failed):
                break  # the request itself is wrong: retrying cannot help
            entries = {f["Id"]: entries[f["Id"]] for f in failed}
        raise EnqueueError(f"could not enqueue {len(entries)} image(s): {last_error}")


class SqsRedelivery:
    """Messages of the image queue whose results could not be written: made visible again after a
    short delay, or handed to the dead-letter queue with the result they measured."""

    def __init__(self, queue_url: str, dead_letter_queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.client = client or boto3.client("sqs", config=Config(retries={"mode": "standard"}))

    def retry_later(self, receipts: Sequence[tuple[str, int]]) -> None:
        """(receipt handle, seconds until visible) of each message; best effort (else the visibility
        timeout brings them back)."""
        for start in range(0, len(receipts), SQS_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": delay}
                for i, (receipt, delay) in enumerate(receipts[start : start + SQS_BATCH])
            ]
            self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)

    def hand_to_dead_letters(self, bodies: Sequence[str]) -> None:
        """Send these bodies to the dead-letter queue, or raise EnqueueError."""
        for start in range(0, len(bodies), SQS_BATCH):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + SQS_BATCH])]
            try:
                resp = self.client.send_message_batch(QueueUrl=self.dead_letter_queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise EnqueueError(f"could not hand results to the dead-letter queue: {exc}") from None
            if resp.get("Failed"):
                raise EnqueueError(f"could not hand {len(resp['Failed'])} result(s) to the dead-letter queue")
