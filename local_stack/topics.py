"""Makes the template's SNS topics readable locally.

moto (server mode) delivers a topic's messages to its `http` subscriptions with a real POST. The
local stack subscribes this inbox (its own small HTTP server on 127.0.0.1) to every topic of the
template, keeps what arrives, and serves it on the API port at `GET /_local/topics/<LogicalId>`
(a JSON list of {"message_id", "subject", "message", "timestamp"}, oldest first).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/_local/topics/"


class TopicInbox:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._messages: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                inbox.receive(self.path.strip("/"), raw)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._base = f"http://{host}:"  # every inbox of a local stack on this host
        threading.Thread(target=self._server.serve_forever, name="topic-inbox", daemon=True).start()

    def subscribe(self, sns: Any, logical_id: str, topic_arn: str) -> None:
        self._messages.setdefault(logical_id, [])
        endpoint = f"{self.url}/{logical_id}"
        # A topic restored from a saved state still has the inbox of the previous run subscribed, on
        # a port that may belong to anything by now: those subscriptions go.
        previous = sns.list_subscriptions_by_topic(TopicArn=topic_arn).get("Subscriptions", [])
        for sub in previous:
            old = sub.get("Endpoint", "")
            ours = sub.get("Protocol") == "http" and old.startswith(self._base) and old.endswith(f"/{logical_id}")
            if ours and old != endpoint:
                sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        sns.subscribe(TopicArn=topic_arn, Protocol="http", Endpoint=endpoint)

    def export_messages(self) -> dict[str, list[dict]]:
        with self._lock:
            return {topic: list(messages) for topic, messages in self._messages.items()}

    def import_messages(self, saved: dict[str, list[dict]]) -> None:
        with self._lock:
            for topic, messages in saved.items():
                self._messages[topic] = list(messages) + self._messages.get(topic, [])

    @property
    def changes(self) -> int:
        return sum(len(messages) for messages in self._messages.values())

    def receive(self, logical_id: str, raw: bytes) -> None:
        try:
            envelope = json.loads(raw)
        except ValueError:
            return
        if envelope.get("Type") != "Notification":
            return  # subscription confirmations: moto confirms http subscriptions itself
        entry = {
            "message_id": envelope.get("MessageId"),
            "subject": envelope.get("Subject"),
            "message": envelope.get("Message"),
            "timestamp": envelope.get("Timestamp"),
        }
        with self._lock:
            self._messages.setdefault(logical_id, []).append(entry)

    def serve(self, path: str) -> tuple[int, str, bytes] | None:
        """The gateway's handler for GET /_local/topics/<LogicalId>."""
        logical_id = path.removeprefix(PREFIX).strip("/")
        with self._lock:
            if logical_id not in self._messages:
                return 404, "application/json", json.dumps({"error": f"no topic {logical_id[:64]}"}).encode()
            return 200, "application/json", json.dumps(self._messages[logical_id]).encode()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
