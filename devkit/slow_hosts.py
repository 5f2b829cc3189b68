"""Hosts that answer too slowly on purpose (tests): each sends the start of a valid answer, then
drips the rest one byte per `interval` seconds, never slowly enough to trip a read timeout. Each
connection is given up after `give_up_s` so a test that fails still ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

# What each mode sends at once; the drip follows.
HEADERS_THEN_BODY = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"
STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
# A TLS record header announcing a 16 KB handshake record: a client waits for all of it.
TLS_RECORD = b"\x16\x03\x03\x40\x00"
MODES = {"body": HEADERS_THEN_BODY, "chunked": CHUNKED, "headers": STATUS_LINE, "tls": TLS_RECORD}


class DripServer:
    """`DripServer(mode)`: "body" (a valid Content-Length, then the body 1 byte at a time), "chunked"
    (1-byte chunks), "headers" (the status line, then header bytes), "tls" (a TLS handshake record,
    1 byte at a time). `url(path)`; `connections` counts accepted connections."""

    def __init__(self, mode: str = "body", *, interval: float = 1.0, give_up_s: float = 30.0) -> None:
        self.mode, self.interval, self.give_up_s = mode, interval, give_up_s
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._sock.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="drip-accept", daemon=True).start()

    def url(self, path: str = "/drip.png", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), name="drip", daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            if self.mode != "tls":
                request = b""
                while b"\r\n\r\n" not in request:  # the request's head, before answering
                    piece = conn.recv(4096)
                    if not piece:
                        return
                    request += piece
            conn.sendall(MODES[self.mode])
            ends = time.monotonic() + self.give_up_s
            while time.monotonic() < ends and not self._closed.is_set():
                time.sleep(self.interval)
                conn.sendall(self._next_piece())

    def _next_piece(self) -> bytes:
        if self.mode == "chunked":
            return b"1\r\nx\r\n"
        if self.mode == "headers":
            return b"a"  # an endless header name: never a complete line
        return b"x"

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
