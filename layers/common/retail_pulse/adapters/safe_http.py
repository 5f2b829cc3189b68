"""Outbound HTTP to URLs that clients give us (image downloads, completion callbacks), safe from SSRF.

A URL from a client must never make us reach our own network: the Lambda Runtime API and the
metadata service listen on loopback / link-local addresses, a VPC on private ones. So every hop:

1. is http or https, with a host (no credentials are sent from the URL);
2. has its host resolved once here, and is refused unless every address is public
   (`ipaddress` `is_global`, plus explicit checks for loopback, private, link-local including
   169.254.169.254, multicast, reserved and unspecified addresses, and for IPv4 embedded in IPv6:
   IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4, Teredo);
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

- `deadline` (a `time.monotonic()` value) bounds the whole call: connects, reads, redirects,
  retries and their waits. Timeouts are also capped per attempt by `connect_timeout`/`read_timeout`.
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

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024
ERROR_BODY_BYTES = 64 * 1024  # what is kept of a non-2xx body (enough for a message, not a download)
# Headers that belong to the first host only: never forwarded to another host by a redirect.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key"})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


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


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not be contacted from a client's URL, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"{reason} (embedded in {address})" if reason else None
    for check, name in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_private", "private"),
        ("is_multicast", "multicast"),
        ("is_reserved", "reserved"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(address, check):
            return f"{name} address {address}"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return f"site-local address {address}"
    if not address.is_global:
        return f"non-public address {address}"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where packets end up
    return None


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
            target = self._vet(url)
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

    def _vet(self, url: str) -> _Target:
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
            infos = (self.resolver or socket.getaddrinfo)(host, port, type=socket.SOCK_STREAM)
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
                return response.status, response.headers, _read_capped(response, max_bytes, deadline)
            finally:
                response.release_conn()
        except NewConnectionError as exc:  # a ConnectTimeoutError subclass in urllib3 2: checked first
            raise HttpConnectionFailed(f"connection to {target.host} failed: {type(exc).__name__}") from None
        except Urllib3Timeout:
            raise HttpTimeout(f"timed out: {target.host}") from None
        except SSLError as exc:
            raise HttpConnectionFailed(f"TLS failed for {target.host}: {exc}", transient=False) from None
        except LocationParseError:
            raise InvalidUrl("malformed URL") from None
        except (HTTPError, OSError) as exc:
            raise HttpConnectionFailed(f"connection to {target.host} failed: {type(exc).__name__}") from None

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
        common = {"port": target.port, "maxsize": 1, "retries": False}
        if target.scheme == "http":
            return urllib3.HTTPConnectionPool(target.address, **common)
        return urllib3.HTTPSConnectionPool(
            target.address,
            cert_reqs=ssl.CERT_REQUIRED,
            ca_certs=self.ca_certs or certifi.where(),
            server_hostname=target.host,  # SNI
            assert_hostname=target.host,  # the certificate must name the host, not the IP
            **common,
        )


MAX_POOLS_PER_THREAD = 32  # distinct hosts kept alive per worker thread


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


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: float) -> bytes:
    ok = 200 <= response.status < 300
    declared = response.headers.get("Content-Length")
    if ok and declared and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response larger than {max_bytes} bytes (Content-Length {declared})")
    limit = max_bytes if ok else min(max_bytes, ERROR_BODY_BYTES)
    chunks, size = [], 0
    for chunk in response.stream(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            if not ok:
                chunks.append(chunk[: len(chunk) - (size - limit)])
                break
            raise ResponseTooLarge(f"response larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise HttpTimeout("timed out while reading the response")
        chunks.append(chunk)
    return b"".join(chunks)
