"""Image download through SafeHttpClient; every failure becomes an ImageError (a failed result)."""

from __future__ import annotations

import time

from retail_pulse.adapters.safe_http import (
    BlockedDestination,
    HttpConnectionFailed,
    HttpTimeout,
    InvalidUrl,
    ResponseTooLarge,
    SafeHttpClient,
    SafeHttpError,
    is_transient_status,
)
from retail_pulse.domain.measuring import ImageError
from retail_pulse.domain.validation import without_credentials

ACCEPT_IMAGES = {"Accept": "image/jpeg, image/png, image/webp, image/gif"}


class ImageDownloader:
    """Downloads an image through `SafeHttpClient` (SSRF guard, timeouts, deadline, streamed size cap).

    Transient failures (timeouts, connection errors, 429, 5xx) are retried inside the invocation,
    with backoff and jitter, until `attempts` or the deadline run out; then the image fails. Any
    other 4xx fails at once. A bad URL is never an exception that SQS would redeliver: every
    failure here is an `ImageError`, i.e. a failed result.
    """

    def __init__(
        self,
        connect_timeout: float,
        read_timeout: float,
        max_bytes: int,
        *,
        allow_private: bool = False,
        attempts: int = 3,
        client: SafeHttpClient | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.attempts = attempts
        self.client = client or SafeHttpClient(
            allow_private=allow_private, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    def fetch(self, url: str, deadline: float) -> bytes:
        if deadline - time.monotonic() <= 0:
            raise ImageError("download timed out (no time left in this invocation)", "transient")
        try:
            response = self.client.request(
                "GET", url, deadline=deadline, max_bytes=self.max_bytes, attempts=self.attempts, headers=ACCEPT_IMAGES
            )
        except BlockedDestination as exc:
            raise ImageError(f"download refused: {exc}") from None
        except ResponseTooLarge:
            raise ImageError(f"image larger than {self.max_bytes} bytes") from None
        except HttpTimeout:
            raise ImageError(f"download timed out: {without_credentials(url)}", "transient") from None
        except InvalidUrl as exc:
            raise ImageError(f"download failed: {exc}") from None
        except HttpConnectionFailed as exc:
            kind = "transient" if exc.transient else "permanent"
            raise ImageError(f"download failed: {type(exc).__name__}", kind) from None
        except SafeHttpError as exc:
            raise ImageError(f"download failed: {type(exc).__name__}") from None
        if response.status != 200:
            # 429 and 5xx were retried already (attempts, deadline): still transient, worth a later retry.
            kind = "transient" if is_transient_status(response.status) else "permanent"
            raise ImageError(f"HTTP {response.status} downloading {without_credentials(url)}", kind)
        return response.body
