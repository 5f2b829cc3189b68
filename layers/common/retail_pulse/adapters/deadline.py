"""Deadlines that a slow or hostile host cannot stretch (used by `safe_http`).

A socket timeout bounds one read, not a request: a host that sends one byte just inside it keeps
the request going for as long as it likes (a valid Content-Length, then 1 byte/s; or the same in the
status line and headers, or in a TLS handshake), and the Lambda is killed at its timeout with the
batch's good images. So every request runs under a `DeadlineGuard`: a timer that, at the deadline,
shuts down the sockets the request uses, so whatever read, write or handshake is blocked returns at
once; the caller sees `guard.expired` and reports a timeout. `GuardedHTTPConnection` /
`GuardedHTTPSConnection` (urllib3's, as a pool's `ConnectionCls`) hand their sockets to the guard of
the request running in their thread, both a new connection's and a kept-alive one's. DNS lookups,
which take no timeout at all, run with `call_by(deadline, ...)`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import urllib3.connection

_current = threading.local()  # the guard of the request running in this thread


class DeadlineGuard:
    """`with DeadlineGuard(deadline) as guard:` around one request; `guard.expired` after it says
    whether the deadline cut it short (its sockets were shut down: a body may look complete)."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.done = False
        self._lock = threading.Lock()
        # Duplicates of the request's socket descriptors: shutdown() through one ends the connection
        # for every descriptor (a TLS socket detaches the plain socket it wraps), and closing our
        # duplicate never closes a descriptor that urllib3 still owns or that was reused since.
        self._handles: list[socket.socket] = []
        self._outer: DeadlineGuard | None = None

    def __enter__(self) -> DeadlineGuard:
        self._outer = getattr(_current, "guard", None)
        _current.guard = self
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.guard = self._outer
        with self._lock:
            self.done = True  # the watchdog drops it when its time comes
            handles, self._handles = self._handles, []
            for handle in handles:
                handle.close()

    def watch(self, sock: socket.socket) -> None:
        try:
            handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return  # already closed: nothing left to cut short
        with self._lock:
            if self.expired:
                _shut(handle)
                handle.close()
            else:
                self._handles.append(handle)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            for handle in self._handles:
                _shut(handle)


class _Watchdog:
    """One thread for every guard of the process (no thread started per request): it sleeps until
    the earliest deadline and expires the guards whose deadline has come."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, DeadlineGuard]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, guard: DeadlineGuard) -> None:
        with self._condition:
            heapq.heappush(self._heap, (guard.deadline, next(self._seq), guard))
            if self._thread is None or not self._thread.is_alive():  # first use, or after a fork
                self._thread = threading.Thread(target=self._run, name="deadline-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0][2] is guard:
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= time.monotonic()):
                    _, _, guard = heapq.heappop(self._heap)
                    guard.expire()  # a no-op for a finished request
                self._condition.wait(self._heap[0][0] - time.monotonic() if self._heap else None)


_WATCHDOG = _Watchdog()


def _shut(handle: socket.socket) -> None:
    with contextlib.suppress(OSError):
        handle.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    guard = getattr(_current, "guard", None)
    if guard is not None and sock is not None:
        guard.watch(sock)


class GuardedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:  # a new connection's socket, before any TLS handshake
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # a kept-alive connection's socket
        _watch(self.sock)
        super().request(*args, **kwargs)


class GuardedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)


# Lookups run here so that one that hangs can be given up at the deadline (it finishes on its own:
# resolvers give up after a few seconds). Enough workers for a batch's images and a few hung ones.
_LOOKUPS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="deadline-call")


def call_by[T](deadline: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)`, or TimeoutError when it has not returned by the deadline (it
    runs on a shared worker thread, left to finish on its own then: meant for DNS lookups)."""
    future = _LOOKUPS.submit(function, *args, **kwargs)
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        future.cancel()  # still queued behind hung lookups: never started
        raise TimeoutError("deadline reached") from None
