"""Outbound HTTP to URLs that clients give us (image downloads, completion callbacks), safe from SSRF.

A URL from a client must never make us reach our own network: the Lambda Runtime API and the
metadata service listen on loopback / link-local addresses, a VPC on private ones. So every hop:

1. is http or https, with a host (no credentials are sent from the URL);
2. has its host resolved once here, and is refused unless every address is public
   (`ipaddress` `is_global`, plus explicit checks for loopback, private, link-local including
   169.254.169.254, multicast, reserved and unspecified addresses, and for IPv4 embedded in IPv6:
   IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4, Teredo: `addresses.refusal_reason`);
3. is connected to **that vetted address** (no second DNS lookup, so no DNS-rebinding window),
   while the request keeps the hostname in its `Host` header and, for https, in TLS SNI and in the
   certificate check;
4. follows at most `max_redirects` (3) redirects, each hop checked again from step 1.

`allow_private=True` turns step 2's refusal off (the local stack and tests serve from 127.0.0.1);
in the cloud it stays off (`ALLOW_PRIVATE_IMAGE_HOSTS`).

Public API::

    client = SafeHttpClient(allow_private=False, connect_timeout=3, read_timeout=10)
    response = client.request(
        "POST", url, deadline=time.monotonic() + 10, max_bytes=64 * 1024,
        headers={"Content-Type": "application/json"}, body=b"{...}", attempts=3,
    )
    response.status, response.headers, response.body, response.url

- `deadline` (a `time.monotonic()` value) bounds the whole call, total time: DNS, connects, TLS
  handshakes, the response's head and body, redirects, retries and their waits. Each socket read
  waits at most min(`read_timeout`, time left), and a host that drips bytes inside that (1 byte/s
  after a valid Content-Length) is cut off at the deadline by `deadline.DeadlineGuard`:
  `HttpTimeout`.
- `max_bytes` caps the (decoded) body while it streams: a larger declared `Content-Length` is
  refused at once, and a body that grows past the cap (chunked, or a lying length) is cut off
  with `ResponseTooLarge`. Error responses (not 2xx) keep at most 64 KiB of their body.
- `attempts` > 1 retries transient failures (timeouts, connection errors, 429, 5xx) with
  exponential backoff and jitter, honouring `Retry-After` (seconds, at most `max_retry_wait_s`),
  never past the deadline. After the last attempt a 429/5xx response is returned as is; a
  transient exception is raised. Other 4xx responses are returned at once.
- Every failure is a `SafeHttpError` (`transient` says whether retrying could help):
  `BlockedDestination`, `InvalidUrl`, `TooManyRedirects`, `ResponseTooLarge`, `HttpTimeout`,
  `HttpConnectionFailed`.

The client holds no connections between calls (each hop opens one to its vetted address), so it is
safe to share between threads.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, LocationParseError, NewConnectionError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from retail_pulse.adapters.addresses import refusal_reason
from retail_pulse.adapters.deadline import DeadlineGuard, GuardedHTTPConnection, GuardedHTTPSConnection, call_by

Resolver = Callable[..., list]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024  # what is kept of a non-2xx body (enough for a message, not a download)
# Headers that belong to the first host only: never forwarded to another host by a redirect.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})


class SafeHttpError(Exception):
    """Any failure of `SafeHttpClient.request`; `transient` says whether a retry could succeed."""

    transient = False


class InvalidUrl(SafeHttpError):
    pass


class BlockedDestination(SafeHttpError):
    """The URL (or a redirect) leads to a non-public address and private hosts are not allowed."""


class TooManyRedirects(SafeHttpError):
    pass


class ResponseTooLarge(SafeHttpError):
    pass


class HttpTimeout(SafeHttpError):
    transient = True


class HttpConnectionFailed(SafeHttpError):
    transient = True

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class SafeHttpResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive (urllib3's HTTPHeaderDict)
    body: bytes
    url: str  # the final URL, after redirects
    redirects: int = 0
    attempts: int = 1


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # the hostname as in the URL (Host header, SNI, certificate check)
    port: int
    path: str  # path and query
    address: str  # the vetted IP the connection goes to


@dataclass
class SafeHttpClient:
    allow_private: bool = False
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_redirects: int = 3
    backoff_base_s: float = 0.2
    backoff_max_s: float = 2.0
    max_retry_wait_s: float = 5.0
    ca_certs: str | None = None  # default: certifi's bundle
    resolver: Resolver | None = None  # default: socket.getaddrinfo, looked up at call time
    sleep: Callable[[float], None] = field(default=time.sleep)
    # Keep-alive: one connection pool per (vetted address, port, host) and worker thread, reused by
    # later requests (a batch's images usually share a host). Keyed by the vetted address, so a
    # reused connection still goes only where the check allowed.
    _pools: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    # -- the public call --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        attempts: int = 1,
    ) -> SafeHttpResponse:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._follow(
                    method, url, deadline=deadline, max_bytes=max_bytes, headers=dict(headers or {}), body=body
                )
            except SafeHttpError as exc:
                if not exc.transient or not self._wait_before_retry(attempt, attempts, deadline, None):
                    raise
                continue
            if is_transient_status(response.status) and self._wait_before_retry(
                attempt, attempts, deadline, response.headers.get("Retry-After")
            ):
                continue
            return SafeHttpResponse(
                response.status, response.headers, response.body, response.url, response.redirects, attempt
            )

    # -- retries ----------------------------------------------------------------------------------
    def _wait_before_retry(self, attempt: int, attempts: int, deadline: float, retry_after: str | None) -> bool:
        """Sleeps before the next attempt; False when there is none (attempts or time used up)."""
        if attempt >= attempts:
            return False
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)  # backoff with jitter
        server_wait = _retry_after_seconds(retry_after)
        if server_wait is not None:
            if server_wait > self.max_retry_wait_s:
                return False  # the server asks for longer than we are willing to hold the invocation
            wait = max(wait, server_wait)
        # Keep time for the next attempt to do something useful (at least a connect).
        if time.monotonic() + wait + min(self.connect_timeout, 0.5) >= deadline:
            return False
        self.sleep(wait)
        return True

    # -- one attempt: the hops of a redirect chain ------------------------------------------------
    def _follow(
        self, method: str, url: str, *, deadline: float, max_bytes: int, headers: dict[str, str], body: bytes | None
    ) -> SafeHttpResponse:
        redirects = 0
        first_host = None
        while True:
            target = self._vet(url, deadline)
            first_host = first_host or target.host
            if target.host != first_host:
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
            status, response_headers, data = self._send(
                target, method, headers=headers, body=body, deadline=deadline, max_bytes=max_bytes
            )
            location = response_headers.get("Location")
            if status not in REDIRECT_STATUSES or not location:
                return SafeHttpResponse(status, response_headers, data, url, redirects)
            redirects += 1
            if redirects > self.max_redirects:
                raise TooManyRedirects(f"more than {self.max_redirects} redirects")
            url = urljoin(url, location)
            if status == 303 or (status in (301, 302) and method.upper() == "POST"):
                method, body = "GET", None  # what browsers do; 307/308 keep method and body

    def _vet(self, url: str, deadline: float) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidUrl("malformed URL") from None
        if parts.scheme not in ("http", "https"):
            raise InvalidUrl(f"only http and https URLs are fetched, not {parts.scheme or 'a relative URL'}")
        host = parts.hostname
        if not host:
            raise InvalidUrl("URL without a host")
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            # getaddrinfo takes no timeout, and a hostile name server can answer slowly.
            infos = call_by(deadline, self.resolver or socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise HttpTimeout(f"timed out resolving {host}") from None
        except socket.gaierror as exc:
            # A name that does not exist will not start existing in a second; a DNS hiccup may.
            raise HttpConnectionFailed(f"cannot resolve {host}", transient=exc.errno == socket.EAI_AGAIN) from None
        except (OSError, UnicodeError):
            raise HttpConnectionFailed(f"cannot resolve {host}", transient=False) from None
        addresses = []
        for info in infos:
            try:
                addresses.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise HttpConnectionFailed(f"cannot resolve {host}")
        if not self.allow_private:
            # Every answer is checked: a public record next to a private one must not be a way in.
            for address in addresses:
                reason = refusal_reason(address)
                if reason:
                    raise BlockedDestination(f"refused: {host} resolves to a {reason}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Target(parts.scheme, host, port, path, str(addresses[0]))

    def _send(
        self,
        target: _Target,
        method: str,
        *,
        headers: dict[str, str],
        body: bytes | None,
        deadline: float,
        max_bytes: int,
    ) -> tuple[int, Mapping[str, str], bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HttpTimeout("timed out (deadline reached)")
        timeout = urllib3.Timeout(connect=min(self.connect_timeout, remaining), read=min(self.read_timeout, remaining))
        default_port = 443 if target.scheme == "https" else 80
        host_header = f"[{target.host}]" if ":" in target.host else target.host
        if target.port != default_port:
            host_header += f":{target.port}"
        request_headers = {"Accept-Encoding": "identity", **headers, "Host": host_header}
        pool = self._pool(target)
        # The guard cuts off what per-read timeouts cannot: a head or handshake dripped byte by byte.
        with DeadlineGuard(deadline) as guard:
            try:
                response = pool.urlopen(
                    method,
                    target.path,
                    body=body,
                    headers=request_headers,
                    redirect=False,
                    retries=False,
                    preload_content=False,
                    assert_same_host=False,
                    timeout=timeout,
                )
                try:
                    data = _read_capped(response, max_bytes, deadline, self.read_timeout)
                except BaseException:
                    response.close()  # a body left half read: the connection is not reused
                    raise
                finally:
                    response.release_conn()
            except (HTTPError, OSError) as exc:
                if guard.expired:
                    raise HttpTimeout(f"timed out (deadline reached): {target.host}") from None
                raise _failure(exc, target.host) from None
            if guard.expired:  # its sockets were shut down: a body without a length may look whole
                raise HttpTimeout(f"timed out (deadline reached): {target.host}")
        return response.status, response.headers, data

    def _pool(self, target: _Target) -> urllib3.HTTPConnectionPool:
        pools = getattr(self._pools, "by_target", None)
        if pools is None:
            pools = self._pools.by_target = {}
        key = (target.scheme, target.address, target.port, target.host)
        pool = pools.get(key)
        if pool is None:
            if len(pools) >= MAX_POOLS_PER_THREAD:
                for old in pools.values():
                    old.close()
                pools.clear()
            pool = pools[key] = self._new_pool(target)
        return pool

    def _new_pool(self, target: _Target) -> urllib3.HTTPConnectionPool:
        # The pool's host is the vetted IP: urllib3 connects there and never resolves the name again.
        # Timeouts are given per request (what is left of the deadline).
        if target.scheme == "http":
            pool = urllib3.HTTPConnectionPool(target.address, port=target.port, maxsize=1, retries=False)
            pool.ConnectionCls = GuardedHTTPConnection  # its sockets reach the request's DeadlineGuard
            return pool
        secure = urllib3.HTTPSConnectionPool(
            target.address,
            port=target.port,
            maxsize=1,
            retries=False,
            cert_reqs=ssl.CERT_REQUIRED,
            ca_certs=self.ca_certs or certifi.where(),
            server_hostname=target.host,  # SNI
            assert_hostname=target.host,  # the certificate must name the host, not the IP
        )
        secure.ConnectionCls = GuardedHTTPSConnection
        return secure


MAX_POOLS_PER_THREAD = 32  # distinct hosts kept alive per worker thread


def _failure(exc: Exception, host: str) -> SafeHttpError:
    """A urllib3 or socket failure (not the deadline's) as our error."""
    if isinstance(exc, NewConnectionError):  # a ConnectTimeoutError subclass in urllib3 2: checked first
        return HttpConnectionFailed(f"connection to {host} failed: {type(exc).__name__}")
    if isinstance(exc, Urllib3Timeout | TimeoutError):
        return HttpTimeout(f"timed out: {host}")
    if isinstance(exc, SSLError):
        return HttpConnectionFailed(f"TLS failed for {host}: {exc}", transient=False)
    if isinstance(exc, LocationParseError):
        return InvalidUrl("malformed URL")
    return HttpConnectionFailed(f"connection to {host} failed: {type(exc).__name__}")


def is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return max(0.0, seconds)


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float, read_timeout: float) -> bytes:
    ok = 200 <= response.status < 300
    declared = response.headers.get("Content-Length")
    if ok and declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response larger than {max_bytes} bytes (Content-Length {declared})")
    limit = max_bytes if ok else min(max_bytes, ERROR_BODY_BYTES)
    sock = getattr(response.connection, "sock", None)
    chunks: list[bytes] = []
    size = 0
    while True:
        # Total time, not per read: each read waits at most what is left, and read1 returns what one
        # read brought (read(n) would wait for all n bytes, read by read, past any deadline).
        left = deadline - time.monotonic()
        if left <= 0:
            raise HttpTimeout("timed out while reading the response")
        if sock is not None:
            sock.settimeout(min(read_timeout, left))
        chunk = response.read1(CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            if not ok:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                return b"".join(chunks)
            raise ResponseTooLarge(f"response larger than {max_bytes} bytes")
        chunks.append(chunk)
