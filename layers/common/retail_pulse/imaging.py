"""Image download and measurement. No AWS here: the worker threads of process_image call this."""

from __future__ import annotations

import io
import time
import warnings

from PIL import Image, UnidentifiedImageError

from .safe_http import BlockedDestination, HttpTimeout, InvalidUrl, ResponseTooLarge, SafeHttpClient, SafeHttpError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Far above any store photo, far below what would exhaust a Lambda's memory if decoded.
MAX_IMAGE_PIXELS = 64_000_000
ACCEPT_IMAGES = {"Accept": "image/jpeg, image/png, image/webp, image/gif"}

# Pillow refuses larger images in Image.open (a warning above the limit, an error above twice it);
# the warning is made an error too. Set once for the process: `warnings.catch_warnings` around each
# call would not be thread-safe, and process_image measures images on several threads.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageError(Exception):
    """The image cannot be measured; the message becomes the result's `error`."""


def perimeter(width: int, height: int) -> int:
    return 2 * (width + height)


def measure_image(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header; pixels are never decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
            width, height = img.size
    except UnidentifiedImageError:
        raise ImageError("not an image (or not JPEG/PNG/WebP/GIF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large (decompression bomb refused)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"not a valid image: {exc}") from None
    if width > 0 and height > 0 and width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"image too large: {width}x{height} pixels")
    return width, height


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
            raise ImageError("download timed out (no time left in this invocation)")
        try:
            response = self.client.request(
                "GET", url, deadline=deadline, max_bytes=self.max_bytes, attempts=self.attempts, headers=ACCEPT_IMAGES
            )
        except BlockedDestination as exc:
            raise ImageError(f"download refused: {exc}") from None
        except ResponseTooLarge:
            raise ImageError(f"image larger than {self.max_bytes} bytes") from None
        except HttpTimeout:
            raise ImageError(f"download timed out: {url}") from None
        except InvalidUrl as exc:
            raise ImageError(f"download failed: {exc}") from None
        except SafeHttpError as exc:
            raise ImageError(f"download failed: {type(exc).__name__}") from None
        if response.status != 200:
            raise ImageError(f"HTTP {response.status} downloading {url}")
        return response.body
