"""Many clients at once (a browser, a load test, the dashboard's polling): every connection is
accepted and answered, none reset or left waiting for a SYN retry."""

from __future__ import annotations

import subprocess
import sys

from gateway_kit import API_KEY, FakePool
from reliability import record

from local_stack.gateway import LISTEN_BACKLOG

CONCURRENT = 200

# Run in a process of its own: client threads in the test process would share the GIL with the
# gateway's accept loop and pace it, hiding a short listen backlog.
CLIENT = """
import socket, sys, threading
port, path, key, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
request = f"GET {path} HTTP/1.1\\r\\nHost: x\\r\\nx-api-key: {key}\\r\\nConnection: close\\r\\n\\r\\n".encode()
errors, barrier = [], threading.Barrier(n)

def one():
    barrier.wait()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            errors.append(data[:60])
    except Exception as exc:
        errors.append(repr(exc))

threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(errors), errors[:3])
"""


def _hammer(port: int, path: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port), path, API_KEY, str(CONCURRENT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return run.stdout.strip()


def test_the_listen_backlog_holds_a_burst():
    assert LISTEN_BACKLOG >= CONCURRENT


def test_200_concurrent_requests_without_a_connection_error(start_gateway):
    # Some CPU per request, as the real gateway spends building events and JSON.
    pool = FakePool(lambda event: {"statusCode": 200, "body": str(sum(range(100_000)))})
    gw = start_gateway({("GET", "/api/health"): pool})
    assert _hammer(gw.port, "/api/health") == "0 []"
    assert len(pool.events) == CONCURRENT
    record(f"Local gateway: {CONCURRENT} concurrent connections at once, none reset or unanswered", CONCURRENT)


def test_200_concurrent_requests_through_the_local_stack(keyed_local_stack):
    port = int(keyed_local_stack.url.rsplit(":", 1)[1])
    assert _hammer(port, "/api/health") == "0 []"
    record(f"Local gateway: {CONCURRENT} concurrent connections at once, none reset or unanswered", CONCURRENT)
