"""HTTP servers of generated images, for tests and benchmarks (real HTTP, on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode


class BackloggedHTTPServer(ThreadingHTTPServer):
    # Many workers connect at once: the default listen backlog (5) drops connects (1 s SYN retry).
    request_queue_size = 128
    daemon_threads = True


def make_image(fmt: str, width: int, height: int, **save_args) -> bytes:
    from PIL import Image

    mode = "P" if fmt == "GIF" else "RGB"
    img = Image.new(mode, (width, height), color=7 if mode == "P" else (200, 30, 90))
    out = io.BytesIO()
    img.save(out, format=fmt, **save_args)
    return out.getvalue()


class ImageServer:
    """Serves the files added to it (404 otherwise); paths starting /slow wait `slow_seconds` first.
    Every request path is recorded, and the most requests in flight at once under each folder
    (`peaks["/slow/a"]`: of every path below /slow/a)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str, bytes]] = {}
        self.requests: list[str] = []
        self.slow_seconds = 3.0
        self.peaks: dict[str, int] = {}
        self._serving: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                folders = server._enter(self.path)
                try:
                    if self.path.startswith("/slow"):
                        time.sleep(server.slow_seconds)
                    status, ctype, body = server.files.get(self.path, (404, "text/plain", b"not found"))
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)
                finally:
                    server._leave(folders)

        self.httpd = BackloggedHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _enter(self, path: str) -> list[str]:
        parts = path.split("?", 1)[0].split("/")[1:-1]
        folders = ["/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        with self._lock:
            for folder in folders:
                self._serving[folder] = self._serving.get(folder, 0) + 1
                self.peaks[folder] = max(self.peaks.get(folder, 0), self._serving[folder])
        return folders

    def _leave(self, folders: list[str]) -> None:
        with self._lock:
            for folder in folders:
                self._serving[folder] -= 1

    def add(self, path: str, body: bytes, ctype: str = "image/jpeg", status: int = 200) -> str:
        self.files[path] = (status, ctype, body)
        return self.base + path

    def url(self, path: str, **query) -> str:
        return self.base + path + (f"?{urlencode(query)}" if query else "")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class UniformImageHost:
    """One small JPEG at any /i/... path, kept alive: short URLs, so 50,000 of them fit in a request body."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        body = make_image("JPEG", width, height)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = BackloggedHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def visits(self, images: int, per_visit: int = 10, store: str = "RP00001") -> list[dict]:
        urls = [f"{self.base}/i/{i}.jpg" for i in range(images)]
        return [
            {"store_id": store, "image_url": urls[i : i + per_visit], "visit_time": "2024-03-15T10:00:00Z"}
            for i in range(0, images, per_visit)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
