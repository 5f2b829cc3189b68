"""Image download and measurement. No AWS here: the worker threads of process_image call this."""

from __future__ import annotations

import io
import threading
import time
import warnings

import requests
from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Far above any store photo, far below what would exhaust a Lambda's memory if decoded.
MAX_IMAGE_PIXELS = 64_000_000


class ImageError(Exception):
    """The image cannot be measured; the message becomes the result's `error`."""


def perimeter(width: int, height: int) -> int:
    return 2 * (width + height)


def measure_image(data: bytes) -> tuple[int, int]:
    """(width, height) from the image header; pixels are never decoded."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
                width, height = img.size
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise ImageError("not an image (or not JPEG/PNG/WebP/GIF)") from None
            raise ImageError("image too large (decompression bomb refused)") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"not a valid image: {exc}") from None
    if width > 0 and height > 0 and width * height > MAX_IMAGE_PIXELS:
        raise ImageError(f"image too large: {width}x{height} pixels")
    return width, height


class ImageDownloader:
    """requests with connect/read timeouts, a total deadline and a streamed size cap."""

    def __init__(self, connect_timeout: float, read_timeout: float, max_bytes: int) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # requests.Session is not documented thread-safe: one per worker thread, reused for keep-alive.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def fetch(self, url: str, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ImageError("download timed out (no time left in this invocation)")
        timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
        try:
            with self._session().get(url, timeout=timeout, stream=True, allow_redirects=True) as response:
                if response.status_code != 200:
                    raise ImageError(f"HTTP {response.status_code} downloading {url}")
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ImageError(f"image larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise ImageError(f"download timed out: {url}")
                    chunks.append(chunk)
                return b"".join(chunks)
        except requests.Timeout:
            raise ImageError(f"download timed out: {url}") from None
        except requests.RequestException as exc:
            raise ImageError(f"download failed: {type(exc).__name__}") from None
