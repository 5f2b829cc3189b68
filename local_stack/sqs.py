"""A small in-memory SQS for the local stack: standard queues with visibility timeouts, redrive to a
dead-letter queue, fair message groups, and the JSON wire protocol boto3 speaks.

moto's SQS scans every message on each send, receive and delete (its cost grows with queue depth)
and is not thread-safe; here every operation is O(1) amortised (O(log n) for the in-flight heap)
and guarded by one lock per queue.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
DEFAULT_GROUP = ""  # messages without MessageGroupId share one group


class SqsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Message:
    message_id: str
    body: str
    group: str
    sent_at: float
    attributes: dict[str, Any] = field(default_factory=dict)
    receive_count: int = 0
    first_received_at: float | None = None
    receipt: str | None = None  # receipt handle of the current receive, None while ready
    visible_at: float = 0.0


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - SQS's own body checksum


class Queue:
    def __init__(self, name: str, url: str, attributes: dict[str, str], clock=time.monotonic) -> None:
        self.name = name
        self.url = url
        self.arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        self.attributes = {"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600", **attributes}
        self.clock = clock
        self.lock = threading.Condition()
        self.messages: dict[str, Message] = {}
        # Fairness: ready messages per group; groups with ready messages served round-robin.
        self.ready: OrderedDict[str, deque[str]] = OrderedDict()
        self.ready_count = 0
        self.in_flight: list[tuple[float, int, str, str]] = []  # (visible_at, seq, message_id, receipt)
        self.receipts: dict[str, str] = {}  # receipt -> message_id
        self._seq = itertools.count()
        self.dead_letter: Queue | None = None
        self.max_receive_count: int | None = None
        # Counts changes to what `export_messages` returns (messages, receive counts): the local
        # stack's state keeper saves only when this moved.
        self.changes = 0

    # -- configuration --------------------------------------------------------------------
    @property
    def visibility_timeout(self) -> float:
        return float(self.attributes["VisibilityTimeout"])

    def configure_redrive(self, dead_letter: Queue | None, max_receive_count: int | None) -> None:
        self.dead_letter, self.max_receive_count = dead_letter, max_receive_count

    # -- operations -----------------------------------------------------------------------
    def send(self, body: str, group: str | None = None, attributes: dict | None = None) -> Message:
        message = Message(
            message_id=str(uuid.uuid4()),
            body=body,
            group=group or DEFAULT_GROUP,
            sent_at=time.time(),
            attributes=attributes or {},
        )
        with self.lock:
            self.messages[message.message_id] = message
            self._make_ready(message)
            self.changes += 1
            self.lock.notify_all()
        return message

    def receive(self, max_messages: int = 1, visibility_timeout: float | None = None, wait: float = 0) -> list[Message]:
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        deadline = self.clock() + wait
        with self.lock:
            while True:
                self._expire_visibility()
                batch = self._take_ready(max_messages, timeout)
                if batch or self.clock() >= deadline:
                    return batch
                self.lock.wait(timeout=min(0.2, max(0.0, deadline - self.clock())))

    def delete(self, receipt: str) -> bool:
        """Delete by receipt handle; False when the handle is stale (the message was received again)."""
        with self.lock:
            message_id = self.receipts.pop(receipt, None)
            message = self.messages.get(message_id) if message_id else None
            if message_id is None or message is None or message.receipt != receipt:
                return False
            del self.messages[message_id]
            self.changes += 1
            return True

    def change_visibility(self, receipt: str, timeout: float) -> None:
        with self.lock:
            message_id = self.receipts.get(receipt)
            message = self.messages.get(message_id) if message_id else None
            if message is None or message.receipt != receipt:
                raise SqsError("ReceiptHandleIsInvalid", "receipt handle is not valid any more")
            message.visible_at = self.clock() + timeout
            heapq.heappush(self.in_flight, (message.visible_at, next(self._seq), message.message_id, receipt))
            if timeout <= 0:
                self._expire_visibility()
            self.lock.notify_all()

    def purge(self) -> None:
        with self.lock:
            self.messages.clear()
            self.ready.clear()
            self.ready_count = 0
            self.in_flight.clear()
            self.receipts.clear()
            self.changes += 1

    def counts(self) -> tuple[int, int]:
        """(visible, in flight)"""
        with self.lock:
            self._expire_visibility()
            return self.ready_count, len(self.messages) - self.ready_count

    def export_messages(self) -> list[dict]:
        """Every message, ready or in flight, in the order they were sent (JSON-able)."""
        with self.lock:
            return [
                {
                    "message_id": m.message_id,
                    "body": m.body,
                    "group": m.group,
                    "sent_at": m.sent_at,
                    "attributes": m.attributes,
                    "receive_count": m.receive_count,
                    "first_received_at": m.first_received_at,
                }
                for m in self.messages.values()
            ]

    def import_messages(self, saved: list[dict]) -> None:
        """Messages from `export_messages`, all visible at once: one that was in flight when saved
        is received again, as after its visibility timeout (its receive count kept, for the redrive)."""
        with self.lock:
            for d in saved:
                message = Message(
                    message_id=d["message_id"],
                    body=d["body"],
                    group=d["group"],
                    sent_at=d["sent_at"],
                    attributes=d.get("attributes") or {},
                    receive_count=d.get("receive_count", 0),
                    first_received_at=d.get("first_received_at"),
                )
                self.messages[message.message_id] = message
                self._make_ready(message)
            self.changes += 1
            self.lock.notify_all()

    def next_visible_in(self) -> float | None:
        with self.lock:
            return self.in_flight[0][0] - self.clock() if self.in_flight else None

    # -- internals (lock held) --------------------------------------------------------------
    def _make_ready(self, message: Message) -> None:
        message.receipt = None
        group = self.ready.get(message.group)
        if group is None:
            group = self.ready[message.group] = deque()
        group.append(message.message_id)
        self.ready_count += 1

    def _take_ready(self, max_messages: int, timeout: float) -> list[Message]:
        batch: list[Message] = []
        now = self.clock()
        while self.ready and len(batch) < max_messages:
            group_id, ids = next(iter(self.ready.items()))
            message_id = ids.popleft()
            self.ready_count -= 1
            if ids:
                self.ready.move_to_end(group_id)  # round-robin: this group waits for the others
            else:
                del self.ready[group_id]
            message = self.messages.get(message_id)
            if message is None:
                continue
            message.receive_count += 1
            self.changes += 1
            message.first_received_at = message.first_received_at or time.time()
            message.receipt = f"{message_id}#{uuid.uuid4().hex}"
            message.visible_at = now + timeout
            self.receipts[message.receipt] = message_id
            heapq.heappush(self.in_flight, (message.visible_at, next(self._seq), message_id, message.receipt))
            batch.append(message)
        return batch

    def _expire_visibility(self) -> None:
        now = self.clock()
        while self.in_flight and self.in_flight[0][0] <= now:
            visible_at, _, message_id, receipt = heapq.heappop(self.in_flight)
            message = self.messages.get(message_id)
            if message is None or message.receipt != receipt or message.visible_at != visible_at:
                continue  # deleted, received again, or its visibility was changed since
            self.receipts.pop(receipt, None)
            if (
                self.dead_letter is not None
                and self.max_receive_count
                and message.receive_count >= self.max_receive_count
            ):
                del self.messages[message_id]
                self.changes += 1
                self.dead_letter.send(message.body, message.group, message.attributes)
                continue
            self._make_ready(message)


class SqsService:
    """Queues by URL/name, plus the JSON protocol (`X-Amz-Target: AmazonSQS.<Operation>`)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.queues: dict[str, Queue] = {}
        self.lock = threading.Lock()

    def queue_by_url(self, url: str) -> Queue:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        queue = self.queues.get(name)
        if queue is None:
            raise SqsError("QueueDoesNotExist", f"queue {url} does not exist")
        return queue

    def queue_by_arn(self, arn: str) -> Queue:
        return self.queue_by_url(arn.rsplit(":", 1)[-1])

    def create_queue(self, name: str, attributes: dict[str, str]) -> Queue:
        with self.lock:
            queue = self.queues.get(name)
            if queue is None:
                queue = self.queues[name] = Queue(name, f"{self.base_url}/{ACCOUNT}/{name}", {})
            self._set_attributes(queue, attributes)
            return queue

    def _set_attributes(self, queue: Queue, attributes: dict[str, str]) -> None:
        for key, value in attributes.items():
            queue.attributes[key] = value
            if key == "RedrivePolicy":
                policy = json.loads(value) if value else {}
                target = self.queue_by_arn(policy["deadLetterTargetArn"]) if policy else None
                queue.configure_redrive(target, int(policy["maxReceiveCount"]) if policy else None)

    # -- wire protocol ----------------------------------------------------------------------
    def handle(self, operation: str, params: dict) -> dict:
        method = getattr(self, f"_op_{operation}", None)
        if method is None:
            raise SqsError("UnsupportedOperation", f"{operation} is not supported by the local SQS")
        return method(params)

    def _op_CreateQueue(self, p: dict) -> dict:
        return {"QueueUrl": self.create_queue(p["QueueName"], p.get("Attributes") or {}).url}

    def _op_GetQueueUrl(self, p: dict) -> dict:
        return {"QueueUrl": self.queue_by_url(p["QueueName"]).url}

    def _op_ListQueues(self, p: dict) -> dict:
        prefix = p.get("QueueNamePrefix", "")
        return {"QueueUrls": [q.url for n, q in self.queues.items() if n.startswith(prefix)]}

    def _op_GetQueueAttributes(self, p: dict) -> dict:
        queue = self.queue_by_url(p["QueueUrl"])
        visible, in_flight = queue.counts()
        everything = {
            **queue.attributes,
            "QueueArn": queue.arn,
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(in_flight),
            "ApproximateNumberOfMessagesDelayed": "0",
        }
        names = p.get("AttributeNames") or ["All"]
        return {"Attributes": everything if "All" in names else {k: everything[k] for k in names if k in everything}}

    def _op_SetQueueAttributes(self, p: dict) -> dict:
        self._set_attributes(self.queue_by_url(p["QueueUrl"]), p.get("Attributes") or {})
        return {}

    def _op_PurgeQueue(self, p: dict) -> dict:
        self.queue_by_url(p["QueueUrl"]).purge()
        return {}

    def _op_SendMessage(self, p: dict) -> dict:
        message = self.queue_by_url(p["QueueUrl"]).send(p["MessageBody"], p.get("MessageGroupId"))
        return {"MessageId": message.message_id, "MD5OfMessageBody": md5_hex(message.body)}

    def _op_SendMessageBatch(self, p: dict) -> dict:
        queue = self.queue_by_url(p["QueueUrl"])
        entries = p.get("Entries") or []
        if not 1 <= len(entries) <= 10:
            raise SqsError("TooManyEntriesInBatchRequest", "1 to 10 entries per batch")
        ok = []
        for e in entries:
            message = queue.send(e["MessageBody"], e.get("MessageGroupId"))
            ok.append({"Id": e["Id"], "MessageId": message.message_id, "MD5OfMessageBody": md5_hex(message.body)})
        return {"Successful": ok, "Failed": []}

    def _op_ReceiveMessage(self, p: dict) -> dict:
        queue = self.queue_by_url(p["QueueUrl"])
        messages = queue.receive(
            int(p.get("MaxNumberOfMessages", 1)),
            float(p["VisibilityTimeout"]) if "VisibilityTimeout" in p else None,
            wait=min(float(p.get("WaitTimeSeconds", 0)), 20.0),
        )
        return {"Messages": [self.wire_message(m) for m in messages]}

    @staticmethod
    def wire_message(m: Message) -> dict:
        attributes = {
            "ApproximateReceiveCount": str(m.receive_count),
            "SentTimestamp": str(int(m.sent_at * 1000)),
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": str(int((m.first_received_at or m.sent_at) * 1000)),
        }
        if m.group:
            attributes["MessageGroupId"] = m.group
        return {
            "MessageId": m.message_id,
            "ReceiptHandle": m.receipt,
            "MD5OfBody": md5_hex(m.body),
            "Body": m.body,
            "Attributes": attributes,
        }

    def _op_DeleteMessage(self, p: dict) -> dict:
        self.queue_by_url(p["QueueUrl"]).delete(p["ReceiptHandle"])
        return {}

    def _op_DeleteMessageBatch(self, p: dict) -> dict:
        queue = self.queue_by_url(p["QueueUrl"])
        for e in p.get("Entries") or []:
            queue.delete(e["ReceiptHandle"])
        return {"Successful": [{"Id": e["Id"]} for e in p.get("Entries") or []], "Failed": []}

    def _op_ChangeMessageVisibility(self, p: dict) -> dict:
        self.queue_by_url(p["QueueUrl"]).change_visibility(p["ReceiptHandle"], float(p["VisibilityTimeout"]))
        return {}

    def _op_ChangeMessageVisibilityBatch(self, p: dict) -> dict:
        queue = self.queue_by_url(p["QueueUrl"])
        ok, failed = [], []
        for e in p.get("Entries") or []:
            try:
                queue.change_visibility(e["ReceiptHandle"], float(e["VisibilityTimeout"]))
                ok.append({"Id": e["Id"]})
            except SqsError as exc:
                failed.append({"Id": e["Id"], "Code": exc.code, "Message": exc.message, "SenderFault": True})
        return {"Successful": ok, "Failed": failed}
