"""Completion-notice callbacks: signed POSTs through SafeHttpClient (the rules are in logic/notify.py)."""

from __future__ import annotations

import time

from retail_pulse.adapters.safe_http import SafeHttpClient, SafeHttpError
from retail_pulse.ports import CallbackFailed

CALLBACK_ATTEMPTS = 4  # with SafeHttpClient's backoff (0.2 s doubling, at most 2 s) and Retry-After
CALLBACK_DEADLINE_S = 20.0  # the whole call, retries included: well inside both functions' timeouts
CALLBACK_RESPONSE_BYTES = 64 * 1024  # we read nothing of the answer but its status


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
