"""Sample images the local stack serves at /samples/..., so the README's example job runs offline."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw

# name -> (Pillow format, content type, width, height)
SAMPLES = {
    "shelf.jpg": ("JPEG", "image/jpeg", 640, 480),
    "front.png": ("PNG", "image/png", 800, 600),
    "aisle.webp": ("WEBP", "image/webp", 1024, 768),
    "counter.gif": ("GIF", "image/gif", 320, 240),
    "wide.jpg": ("JPEG", "image/jpeg", 1920, 1080),
}


@cache
def sample_image(name: str) -> tuple[str, bytes] | None:
    if name not in SAMPLES:
        return None
    fmt, ctype, width, height = SAMPLES[name]
    img = Image.new("RGB", (width, height), (230, 230, 220))
    draw = ImageDraw.Draw(img)
    for x in range(0, width, 40):
        draw.rectangle([x, height // 3, x + 30, height * 2 // 3], fill=(40 + x % 200, 90, 160))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return ctype, out.getvalue()


def serve_sample(path: str) -> tuple[int, str, bytes] | None:
    found = sample_image(path.removeprefix("/samples/"))
    if found is None:
        return 404, "application/json", b'{"error": "no such sample image"}'
    ctype, data = found
    return 200, ctype, data
