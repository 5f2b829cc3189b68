"""Where job completion notices go: the SNS topic (boto3) and clients' callback URLs (SafeHttpClient).

The rules (what a notice holds, signing, exactly-once) are in logic/notify.py.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

from .logic.notify import Notifier
from .ports import CallbackFailed
from .safe_http import SafeHttpClient, SafeHttpError
from .settings import Settings

CALLBACK_ATTEMPTS = 4  # with SafeHttpClient's backoff (0.2 s doubling, at most 2 s) and Retry-After
CALLBACK_DEADLINE_S = 20.0  # the whole call, retries included: well inside both functions' timeouts
CALLBACK_RESPONSE_BYTES = 64 * 1024  # we read nothing of the answer but its status


class SnsEventTopic:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self.client = client or boto3.client("sns", config=Config(retries={"mode": "standard"}))

    def publish(self, message: str, subject: str) -> None:
        self.client.publish(TopicArn=self.topic_arn, Message=message, Subject=subject[:99])


class SafeHttpCallbackSender:
    """POSTs through SafeHttpClient: the same SSRF rules as image downloads (public addresses only,
    unless ALLOW_PRIVATE_IMAGE_HOSTS), each redirect hop vetted, transient failures retried."""

    def __init__(self, client: SafeHttpClient) -> None:
        self.client = client

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            response = self.client.request(
                "POST",
                url,
                deadline=time.monotonic() + CALLBACK_DEADLINE_S,
                max_bytes=CALLBACK_RESPONSE_BYTES,
                headers=headers,
                body=body,
                attempts=CALLBACK_ATTEMPTS,
            )
        except SafeHttpError as exc:
            raise CallbackFailed(f"{type(exc).__name__}: {exc}") from None
        return response.status


def notifier_from_settings(settings: Settings) -> Notifier:
    return Notifier(
        topic=SnsEventTopic(settings.job_events_topic_arn) if settings.job_events_topic_arn else None,
        callbacks=SafeHttpCallbackSender(
            SafeHttpClient(
                allow_private=settings.allow_private_image_hosts,
                connect_timeout=settings.download_connect_timeout_s,
                read_timeout=settings.download_read_timeout_s,
            )
        ),
        signing_secret=settings.callback_signing_secret.get_secret_value(),
    )
