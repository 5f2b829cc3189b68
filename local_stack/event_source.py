"""Drives an SQS queue into a function the way the Lambda SQS event source mapping does: batches of
BatchSize, up to MaximumConcurrency batches in flight, only successful records deleted (with
ReportBatchItemFailures the reported ones stay), failed ones visible again after the visibility
timeout, and the queue's redrive policy moving them to the DLQ after maxReceiveCount receives.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

from .functions import FunctionPool
from .sqs import Message, Queue, SqsService


def sqs_record(message: Message, queue: Queue) -> dict:
    wire = SqsService.wire_message(message)
    return {
        "messageId": wire["MessageId"],
        "receiptHandle": wire["ReceiptHandle"],
        "body": wire["Body"],
        "attributes": wire["Attributes"],
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(message.body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.arn,
        "awsRegion": "us-east-1",
    }


class SqsEventSource:
    def __init__(
        self, queue: Queue, pool: FunctionPool, batch_size: int, max_concurrency: int, report_item_failures: bool
    ) -> None:
        self.queue = queue
        self.pool = pool
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.report_item_failures = report_item_failures
        self._slots = threading.Semaphore(max_concurrency)
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"esm-{queue.name}")
        self._thread = threading.Thread(target=self._poll, name=f"poller-{queue.name}", daemon=True)
        self.invocations = 0
        self.failed_invocations = 0

    def start(self) -> SqsEventSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            messages = self.queue.receive(self.batch_size, wait=0.2)
            if not messages:
                self._slots.release()
                continue
            self._executor.submit(self._deliver, messages)

    def _deliver(self, messages: list[Message]) -> None:
        try:
            event = {"Records": [sqs_record(m, self.queue) for m in messages]}
            result = self.pool.invoke(event)
            self.invocations += 1
            if not result.ok:
                self.failed_invocations += 1
                return  # the whole batch becomes visible again after the visibility timeout
            failed = self._reported_failures(result.payload, messages)
            for m in messages:
                if m.message_id not in failed and m.receipt is not None:
                    self.queue.delete(m.receipt)
        finally:
            self._slots.release()

    def _reported_failures(self, payload: object, messages: list[Message]) -> set[str]:
        if not self.report_item_failures or not isinstance(payload, dict):
            return set()
        ids = {m.message_id for m in messages}
        failed = set()
        for item in payload.get("batchItemFailures") or []:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if identifier not in ids:
                return ids  # an invalid response fails the whole batch, as Lambda does
            failed.add(identifier)
        return failed
