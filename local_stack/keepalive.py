"""A WSGI server that keeps its connections open between requests (HTTP/1.1), as AWS's endpoints do.

werkzeug's development server ends every answer with `Connection: close`, so each SDK call opened a
TCP connection and closed it: a fifth of the fan-out's CPU (SendMessageBatch calls from 16 threads)
went to connecting and closing. This one serves a WSGI app from http.server's threading server: the
request's body is read by its Content-Length, the app's whole answer is sent with its length, and the
connection stays open for the client's next call (until the client closes it). The body (of a
Content-Length, or chunked) is read whole before the app runs (in memory, or a temporary file past
SPOOL_BYTES), so nothing of it is left on the connection whatever the app reads, and a slow upload
(a manifest from a browser) is read at the client's pace before moto's write lock is taken.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import unquote

WsgiApp = Callable[[dict, Callable[..., Any]], Any]
HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}
SPOOL_BYTES = 16 * 1024 * 1024


class KeepAliveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, app: WsgiApp) -> None:
        self.app = app
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms ACK wait
    server: KeepAliveServer

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - the app reads it
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        if not (self._read_chunked(body) if chunked else self._read_length(body)):
            self.close_connection = True  # the client went away mid-body
            body.close()
            return
        length = body.tell()
        body.seek(0)
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name in self.headers:
            key = "HTTP_" + name.upper().replace("-", "_")
            # The body is handed over decoded, with its length: no transfer coding is left to undo.
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING"):
                environ[key] = ",".join(self.headers.get_all(name) or [])
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [status, headers]

        try:
            chunks = self.server.app(environ, start_response)
            try:
                data = b"".join(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        finally:
            body.close()
        status, headers = answer
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        length_header = None
        for name, value in headers:
            if name.lower() == "content-length":
                length_header = value
            elif name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        # A HEAD answer has no body but the length of the one a GET would have.
        head = self.command == "HEAD"
        self.send_header("Content-Length", (length_header or "0") if head else str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _read_length(self, body: IO[bytes]) -> bool:
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1024 * 1024))
            if not chunk:
                return False
            body.write(chunk)
            left -= len(chunk)
        return True

    def _read_chunked(self, body: IO[bytes]) -> bool:
        """A body sent as `Transfer-Encoding: chunked` (RFC 9112 7.1), trailers skipped."""
        while True:
            size_line = self.rfile.readline(1024)
            if not size_line:
                return False
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                return False
            body.write(chunk)
            self.rfile.readline(8)  # the CRLF after the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass
        return True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve
