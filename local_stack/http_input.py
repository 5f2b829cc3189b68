"""Reading a request body off the wire the way a front door must: a malformed or lying
Content-Length, a body that never arrives, a chunked upload, one over the size limit. Each ends in
an exception the gateway turns into API Gateway's answer, never in a dropped connection."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

DRAIN_CHUNK = 64 * 1024


class BadRequest(Exception):
    """The request cannot be read (answered 400, connection closed)."""


class TooLarge(Exception):
    """The body is over the limit (answered 413, connection closed)."""


@contextlib.contextmanager
def _deadline(req: BaseHTTPRequestHandler, timeout: float) -> Iterator[None]:
    """A per-read timeout on the connection while the body is read: a client that sends fewer bytes
    than it announced gets an answer instead of holding a thread forever."""
    req.connection.settimeout(timeout)
    try:
        yield
    except TimeoutError as exc:
        raise BadRequest(f"request body not received within {timeout:g} s") from exc
    finally:
        with contextlib.suppress(OSError):
            req.connection.settimeout(None)


def _content_length(req: BaseHTTPRequestHandler) -> int | None:
    values = {v.strip() for v in req.headers.get_all("Content-Length") or []}
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("conflicting Content-Length headers")
    (raw,) = values
    # int() would also take "+5", " 5", "1_0" and other digits than ASCII: HTTP allows 1*DIGIT only.
    if not (raw.isascii() and raw.isdigit()):
        raise BadRequest("invalid Content-Length")
    return int(raw)


def read_body(req: BaseHTTPRequestHandler, max_bytes: int, timeout: float) -> bytes:
    if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(req, max_bytes, timeout)
    length = _content_length(req)
    if not length:
        return b""
    with _deadline(req, timeout):
        if length > max_bytes:
            with contextlib.suppress(TimeoutError):
                _drain(req, length)
            raise TooLarge
        body = req.rfile.read(length)
    if len(body) < length:
        raise BadRequest("request body shorter than its Content-Length")
    return body


def _drain(req: BaseHTTPRequestHandler, length: int) -> None:
    """Read an oversized body off the connection (in pieces, never held), so the client, still
    sending, receives the 413 rather than a reset."""
    left = length
    while left > 0:
        got = req.rfile.read(min(left, DRAIN_CHUNK))
        if not got:
            return
        left -= len(got)


def _read_chunked(req: BaseHTTPRequestHandler, max_bytes: int, timeout: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    with _deadline(req, timeout):
        while True:
            line = req.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise BadRequest("invalid chunk size") from exc
            if size < 0:
                raise BadRequest("invalid chunk size")
            if size == 0:
                while req.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields: not passed on (API Gateway has no place for them either)
                return b"".join(chunks)
            total += size
            if total > max_bytes:
                raise TooLarge
            chunk = req.rfile.read(size)
            if len(chunk) < size:
                raise BadRequest("chunked body ended early")
            chunks.append(chunk)
            req.rfile.readline(1024)  # the CRLF after the chunk
