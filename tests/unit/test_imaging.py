from __future__ import annotations

import struct
import time
import zlib

import pytest
from harness import make_image

from retail_pulse.adapters.image_download import ImageDownloader
from retail_pulse.adapters.safe_http import SafeHttpClient
from retail_pulse.domain.measuring import ImageError, measure_image, perimeter


@pytest.mark.parametrize(
    ("fmt", "size", "args"),
    [
        ("JPEG", (31, 17), {}),
        ("JPEG", (800, 600), {"progressive": True}),
        ("PNG", (5, 9), {}),
        ("WEBP", (64, 48), {}),
        ("GIF", (13, 2), {}),
    ],
)
def test_measure_reads_the_header_of_every_format(fmt, size, args):
    assert measure_image(make_image(fmt, *size, **args)) == size


def test_perimeter():
    assert perimeter(640, 480) == 2240


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x89PNG\r\n\x1a\n" + b"\0" * 10])
def test_non_images_fail_clearly(data):
    with pytest.raises(ImageError):
        measure_image(data)


def test_formats_outside_the_allowed_set_are_refused():
    with pytest.raises(ImageError, match="not an image"):
        measure_image(make_image("BMP", 10, 10))


def test_downloader_fetches_and_fails_clearly(image_server):
    downloader = ImageDownloader(connect_timeout=1, read_timeout=1, max_bytes=1000, allow_private=True)
    small = image_server.add("/dl/small.png", make_image("PNG", 3, 3), "image/png")
    assert measure_image(downloader.fetch(small, time.monotonic() + 5)) == (3, 3)
    with pytest.raises(ImageError, match="HTTP 404"):
        downloader.fetch(image_server.url("/dl/none.png"), time.monotonic() + 5)
    big = image_server.add("/dl/big.bin", b"x" * 5000, "image/png")
    with pytest.raises(ImageError, match="larger than 1000 bytes"):
        downloader.fetch(big, time.monotonic() + 5)
    with pytest.raises(ImageError, match="timed out"):
        downloader.fetch(small, time.monotonic() - 1)
    with pytest.raises(ImageError, match="download failed"):
        downloader.fetch("http://127.0.0.1:9/closed.png", time.monotonic() + 5)


def png_claiming(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header (IHDR, with a valid CRC) claims another size."""
    data = bytearray(make_image("PNG", 1, 1))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of IHDR
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


# pytest resets warning filters per test; this mirrors the one retail_pulse.domain.measuring sets for the process.
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (9_000, 9_000), (65_535, 1_000)])
def test_decompression_bombs_are_refused_from_the_header_alone(width, height):
    started = time.monotonic()
    with pytest.raises(ImageError, match="too large"):
        measure_image(png_claiming(width, height))
    assert time.monotonic() - started < 0.5  # nothing was decoded


def test_an_image_at_the_pixel_limit_is_measured():
    assert measure_image(png_claiming(8_000, 8_000)) == (8_000, 8_000)


def test_downloader_refuses_private_hosts_unless_allowed(image_server):
    url = image_server.add("/dl/private.png", make_image("PNG", 2, 2), "image/png")
    before = len(image_server.requests)
    with pytest.raises(ImageError, match=r"download refused: refused: 127\.0\.0\.1 resolves to a loopback"):
        ImageDownloader(1, 1, 10_000).fetch(url, time.monotonic() + 5)
    assert len(image_server.requests) == before
    allowed = ImageDownloader(1, 1, 10_000, allow_private=True)
    assert measure_image(allowed.fetch(url, time.monotonic() + 5)) == (2, 2)


def test_downloader_retries_transient_statuses_and_fails_after_its_attempts(image_server):
    client = SafeHttpClient(allow_private=True, connect_timeout=1, read_timeout=1, sleep=lambda s: None)
    downloader = ImageDownloader(1, 1, 10_000, attempts=3, client=client)
    url = image_server.add("/dl/unavailable.png", b"busy", "text/plain", status=503)
    before = image_server.requests.count("/dl/unavailable.png")
    with pytest.raises(ImageError, match="HTTP 503"):
        downloader.fetch(url, time.monotonic() + 5)
    assert image_server.requests.count("/dl/unavailable.png") - before == 3
    missing = image_server.url("/dl/missing.png")
    with pytest.raises(ImageError, match="HTTP 404"):
        downloader.fetch(missing, time.monotonic() + 5)
    assert image_server.requests.count("/dl/missing.png") == 1


def test_the_pixel_limit_holds_even_without_the_warning_filter(recwarn):
    with pytest.raises(ImageError, match="too large"):
        measure_image(png_claiming(9_000, 9_000))
