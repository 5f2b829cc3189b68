"""Measuring an image: width and height from its header (pixels never decoded), and its perimeter."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Far above any store photo, far below what would exhaust a Lambda's memory if decoded.
MAX_IMAGE_PIXELS = 64_000_000

# Pillow refuses larger images in Image.open (a warning above the limit, an error above twice it);
# the warning is made an error too. Set once for the process: `warnings.catch_warnings` around each
# call would not be thread-safe, and process_image measures images on several threads.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


class ImageError(Exception):
    """The image cannot be measured; the message becomes the result's `error`, `error_class` its
    class (transient: worth retrying later; permanent: the URL or image itself is wrong)."""

    def __init__(self, message: str, error_class: str = "permanent") -> None:
        super().__init__(message)
        self.error_class = error_class


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
