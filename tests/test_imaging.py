from __future__ import annotations

import time

import pytest
from conftest import make_image

from retail_pulse.imaging import ImageDownloader, ImageError, measure_image, perimeter


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
    downloader = ImageDownloader(connect_timeout=1, read_timeout=1, max_bytes=1000)
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
