"""Every request of SafeHttpClient ends by its own deadline (total time, not per read), whatever the
host does: a body, chunks, headers or a TLS handshake dripped one byte at a time inside the read
timeout, a slow DNS answer, redirects and retries to such hosts."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from reliability import record

from devkit.slow_hosts import DripServer
from retail_pulse.adapters.image_download import ImageDownloader
from retail_pulse.adapters.safe_http import HttpTimeout, SafeHttpClient, SafeHttpError
from retail_pulse.domain.measuring import ImageError

DEADLINE_S = 2.0
EPSILON_S = 0.5  # scheduling slack on a shared 2-core machine
ROW = "download: host drips bytes (body, chunks, headers, TLS, DNS) inside the read timeout: ends by its deadline"


@pytest.fixture
def drip():
    servers: list[DripServer] = []

    def start(mode: str) -> DripServer:
        servers.append(DripServer(mode))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client(**kwargs) -> SafeHttpClient:
    # The production read timeout (10 s): one byte a second never trips it.
    return SafeHttpClient(allow_private=True, connect_timeout=3, read_timeout=10, **kwargs)


def timed(call) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except Exception as exc:  # the test looks at what came out
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize("mode", ["body", "chunked", "headers"])
def test_a_dripping_host_times_out_at_the_deadline(drip, mode):
    server = drip(mode)
    error, elapsed = timed(
        lambda: client().request(
            "GET", server.url(), deadline=time.monotonic() + DEADLINE_S, max_bytes=10**6, attempts=3
        )
    )
    assert elapsed <= DEADLINE_S + EPSILON_S, elapsed
    assert isinstance(error, HttpTimeout), error
    record(ROW, 1)


def test_a_dripping_image_is_a_failed_download_that_timed_out(drip):
    server = drip("body")
    downloader = ImageDownloader(3, 10, 10**6, allow_private=True)
    error, elapsed = timed(lambda: downloader.fetch(server.url(), time.monotonic() + DEADLINE_S))
    assert elapsed <= DEADLINE_S + EPSILON_S, elapsed
    assert isinstance(error, ImageError) and str(error).startswith("download timed out"), error
    record(ROW, 1)


def test_a_tls_handshake_that_drips_ends_at_the_deadline(drip):
    server = drip("tls")
    error, elapsed = timed(
        lambda: client().request(
            "GET", server.url(scheme="https"), deadline=time.monotonic() + DEADLINE_S, max_bytes=1000
        )
    )
    assert elapsed <= DEADLINE_S + EPSILON_S, elapsed
    assert isinstance(error, HttpTimeout), error
    record(ROW, 1)


def test_redirects_to_a_dripping_host_and_retries_stay_within_one_deadline(drip):
    target = drip("body")
    # A host that redirects to the dripping one (each hop and each retry share the deadline).
    listener = socket.create_server(("127.0.0.1", 0))
    redirect = f"HTTP/1.1 302 Found\r\nLocation: {target.url()}\r\nContent-Length: 0\r\n\r\n".encode()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(redirect)

    threading.Thread(target=serve, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/start.png"
        error, elapsed = timed(
            lambda: client(sleep=time.sleep).request(
                "GET", url, deadline=time.monotonic() + DEADLINE_S, max_bytes=10**6, attempts=5
            )
        )
    finally:
        listener.close()
    assert elapsed <= DEADLINE_S + EPSILON_S, elapsed
    assert isinstance(error, HttpTimeout), error
    record(ROW, 1)


def test_a_slow_dns_answer_ends_at_the_deadline():
    def slow_resolver(host, port, **kwargs):
        time.sleep(DEADLINE_S * 3)
        return socket.getaddrinfo("127.0.0.1", port, **kwargs)

    http = client(resolver=slow_resolver)
    error, elapsed = timed(
        lambda: http.request("GET", "http://slow-dns.example/a.png", deadline=time.monotonic() + 0.5, max_bytes=1000)
    )
    assert elapsed <= 0.5 + EPSILON_S, elapsed
    assert isinstance(error, SafeHttpError) and error.transient, error
    assert "timed out" in str(error)
    record(ROW, 1)


def test_a_download_well_within_its_deadline_is_untouched(drip):
    """The guard costs nothing when the host is fast: keep-alive reuse, several requests in a row."""
    from devkit.images import ImageServer, make_image

    images = ImageServer()
    try:
        url = images.add("/fast.png", make_image("PNG", 5, 5), "image/png")
        http = client()
        for _ in range(3):
            response = http.request("GET", url, deadline=time.monotonic() + 5, max_bytes=10**6)
            assert response.status == 200 and response.body.startswith(b"\x89PNG")
    finally:
        images.close()
