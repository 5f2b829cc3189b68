"""retail_pulse.adapters.safe_http: SSRF guard (addresses, DNS, rebinding, redirects), retries, size cap, TLS."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection
from reliability import record

from retail_pulse.adapters.safe_http import (
    BlockedDestination,
    HttpConnectionFailed,
    HttpTimeout,
    InvalidUrl,
    ResponseTooLarge,
    SafeHttpClient,
    TooManyRedirects,
    refusal_reason,
)

PUBLIC_IP = "93.184.216.34"  # stands for a host on the internet; the test network shim routes it locally
REAL_GETADDRINFO = socket.getaddrinfo


class ScriptedServer:
    """Answers each path with a script of responses (the last one repeats); records requests."""

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.scripts: dict[str, list[dict]] = {}
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.hits[self.path] += 1
                server.hosts.append(self.headers.get("Host", ""))
                script = server.scripts.get(self.path, [{"status": 404, "body": b"not found"}])
                step = script[min(server.hits[self.path] - 1, len(script) - 1)]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(step)

            do_POST = do_GET

            def _answer(self, step: dict) -> None:
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                body = step.get("body", b"ok")
                self.send_response(step.get("status", 200))
                for key, value in step.get("headers", {}).items():
                    self.send_header(key, value)
                mode = step.get("mode", "length")
                if mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 1000):
                        piece = body[i : i + 1000]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                if mode == "close":  # no length at all: the body ends when the connection does
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                self.send_header("Content-Length", step.get("content_length", str(len(body))))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_context:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def on(self, path: str, *steps: dict) -> str:
        self.scripts[path] = list(steps)
        return path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def shared_server():
    s = ScriptedServer()
    yield s
    s.close()


@pytest.fixture
def server(shared_server):
    shared_server.scripts.clear()
    shared_server.hits.clear()
    shared_server.hosts.clear()
    return shared_server


class Network:
    """DNS and routing of the test: names resolve as configured, PUBLIC_IP is routed to the local
    server, and every address a connection goes to is recorded."""

    def __init__(self, monkeypatch, server_port: int) -> None:
        self.names: dict[str, list[list[str]]] = {}  # hostname -> successive answers
        self.lookups: Counter[str] = Counter()
        self.connections: list[tuple[str, int]] = []
        real_create = urllib3.util.connection.create_connection

        def getaddrinfo(host, port, *args, **kwargs):
            if host in self.names:
                self.lookups[host] += 1
                answers = self.names[host]
                chosen = answers[min(self.lookups[host] - 1, len(answers) - 1)]
                return [_addrinfo(ip, port) for ip in chosen]
            return REAL_GETADDRINFO(host, port, *args, **kwargs)

        def create_connection(address, *args, **kwargs):
            self.connections.append(address)
            host, port = address
            if host == PUBLIC_IP:
                host, port = "127.0.0.1", server_port
            return real_create((host, port), *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)

    def resolve(self, host: str, *answers: list[str]) -> None:
        self.names[host] = list(answers)


def _addrinfo(ip: str, port: int):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sockaddr = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
    return (family, socket.SOCK_STREAM, 6, "", sockaddr)


@pytest.fixture
def network(monkeypatch, server):
    return Network(monkeypatch, server.port)


def client(**kwargs) -> SafeHttpClient:
    kwargs.setdefault("allow_private", False)
    kwargs.setdefault("connect_timeout", 1)
    kwargs.setdefault("read_timeout", 1)
    kwargs.setdefault("sleep", lambda s: None)
    return SafeHttpClient(**kwargs)


def get(http: SafeHttpClient, url: str, *, max_bytes: int = 10_000, seconds: float = 5, attempts: int = 1):
    return http.request("GET", url, deadline=time.monotonic() + seconds, max_bytes=max_bytes, attempts=attempts)


# -- addresses ---------------------------------------------------------------------------------------

NON_PUBLIC_URLS = [
    "http://127.0.0.1:{port}/img.png",
    "http://127.1.2.3/",
    "http://localhost:{port}/img.png",
    "http://[::1]:{port}/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://100.64.0.1/",
    "http://0.0.0.0:{port}/",
    "http://[fd00::1]/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::1]/",
    "http://224.0.0.1/",
    "https://[::]/",
]


def test_non_public_addresses_are_refused_and_never_connected(server, network):
    http = client()
    for template in NON_PUBLIC_URLS:
        with pytest.raises(BlockedDestination, match="refused"):
            get(http, template.format(port=server.port))
    assert network.connections == []
    assert sum(server.hits.values()) == 0
    record("SSRF: loopback/private/link-local/metadata/IPv6/mapped address in the URL", len(NON_PUBLIC_URLS))


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fd12::1", "fe80::1", "::ffff:10.0.0.1"]
)
def test_refusal_reason_names_every_non_public_kind(address):
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", PUBLIC_IP, "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "answers",
    [["10.0.0.1"], ["::ffff:127.0.0.1"], ["169.254.169.254"], ["::1"], [PUBLIC_IP, "127.0.0.1"]],
    ids=["private", "mapped-loopback", "metadata", "ipv6-loopback", "public-and-loopback"],
)
def test_names_resolving_to_non_public_addresses_are_refused(server, network, answers):
    network.resolve("images.evil.test", answers)
    with pytest.raises(BlockedDestination, match=r"images\.evil\.test resolves to"):
        get(client(), f"http://images.evil.test:{server.port}/img.png")
    assert network.connections == []
    record("SSRF: hostname resolving to a non-public address (DNS)", 1)


def test_rebinding_resolver_cannot_redirect_the_connection(server, network):
    # The first answer (checked) is public, any later one would be loopback: the connection must go
    # to the checked address, with no second lookup, and still carry the hostname in Host.
    network.resolve("rebind.test", [PUBLIC_IP], ["127.0.0.1"])
    server.on("/img.png", {"body": b"IMAGE"})
    response = get(client(), "http://rebind.test/img.png")
    assert response.status == 200 and response.body == b"IMAGE"
    assert network.lookups["rebind.test"] == 1
    assert network.connections == [(PUBLIC_IP, 80)]
    assert server.hosts == ["rebind.test"]
    record("SSRF: DNS rebinding (public answer checked, loopback answer next)", 1)


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/secret",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://internal.test/secret",
        "//127.0.0.1:{port}/secret",
        "file:///etc/passwd",
    ],
)
def test_redirect_from_a_public_host_to_a_non_public_one_is_refused(server, network, location):
    network.resolve("public.test", [PUBLIC_IP])
    network.resolve("internal.test", ["10.1.2.3"])
    server.on("/start", {"status": 302, "headers": {"Location": location.format(port=server.port)}})
    server.on("/secret", {"body": b"SECRET"})
    with pytest.raises((BlockedDestination, InvalidUrl)):
        get(client(), "http://public.test/start")
    assert server.hits["/start"] == 1 and server.hits["/secret"] == 0
    assert all(host == PUBLIC_IP for host, _ in network.connections)
    record("SSRF: redirect from a public host to a non-public one", 1)


def test_redirects_are_followed_up_to_three_and_checked_each_hop(server):
    http = client(allow_private=True)
    base = f"http://127.0.0.1:{server.port}"
    for i in range(4):
        server.on(f"/hop{i}", {"status": 301 if i % 2 else 307, "headers": {"Location": f"/hop{i + 1}"}})
    server.on("/hop4", {"body": b"END"})
    response = get(http, f"{base}/hop1")  # hop1 -> hop2 -> hop3 -> hop4: three redirects
    assert (response.status, response.body, response.redirects) == (200, b"END", 3)
    assert response.url == f"{base}/hop4"
    with pytest.raises(TooManyRedirects):
        get(http, f"{base}/hop0")  # four redirects


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://x/", "/relative.png"])
def test_only_http_and_https(url):
    with pytest.raises(InvalidUrl):
        get(client(allow_private=True), url)


def test_loopback_is_allowed_only_when_private_hosts_are(server):
    server.on("/img.png", {"body": b"IMAGE"})
    url = f"http://127.0.0.1:{server.port}/img.png"
    assert get(client(allow_private=True), url).body == b"IMAGE"
    with pytest.raises(BlockedDestination):
        get(client(allow_private=False), url)


# -- retries -----------------------------------------------------------------------------------------


def test_503_twice_then_200_is_retried_with_backoff(server):
    waits: list[float] = []
    server.on("/flaky", {"status": 503}, {"status": 503}, {"body": b"IMAGE"})
    http = client(allow_private=True, sleep=waits.append)
    response = get(http, f"http://127.0.0.1:{server.port}/flaky", attempts=3)
    assert (response.status, response.body, response.attempts) == (200, b"IMAGE", 3)
    assert server.hits["/flaky"] == 3
    assert len(waits) == 2 and 0 < waits[0] <= 0.2 and 0.1 <= waits[1] <= 0.4  # exponential, jittered
    record("download: 503 twice, then 200 (retried in the invocation)", 1)


def test_429_waits_as_retry_after_says(server):
    waits: list[float] = []
    server.on("/busy", {"status": 429, "headers": {"Retry-After": "1"}}, {"body": b"IMAGE"})
    response = get(client(allow_private=True, sleep=waits.append), f"http://127.0.0.1:{server.port}/busy", attempts=3)
    assert response.status == 200 and server.hits["/busy"] == 2
    assert waits == [1.0]
    record("download: 429 with Retry-After, then 200", 1)


def test_retry_after_beyond_the_deadline_is_not_waited_for(server):
    server.on("/busy", {"status": 429, "headers": {"Retry-After": "3"}}, {"body": b"IMAGE"})
    response = get(client(allow_private=True), f"http://127.0.0.1:{server.port}/busy", attempts=3, seconds=2)
    assert response.status == 429 and server.hits["/busy"] == 1


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_client_errors_are_not_retried(server, status):
    server.on("/gone", {"status": status})
    response = get(client(allow_private=True), f"http://127.0.0.1:{server.port}/gone", attempts=3)
    assert response.status == status and server.hits["/gone"] == 1
    record("download: 4xx (not retried, one request)", 1)


def test_persistent_5xx_stops_after_the_attempts(server):
    server.on("/down", {"status": 500})
    response = get(client(allow_private=True), f"http://127.0.0.1:{server.port}/down", attempts=3)
    assert response.status == 500 and server.hits["/down"] == 3


def test_connection_refused_is_retried_then_raised():
    waits: list[float] = []
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HttpConnectionFailed):
        get(client(allow_private=True, sleep=waits.append), f"http://127.0.0.1:{port}/x", attempts=3)
    assert len(waits) == 2


def test_read_timeout_and_deadline(server):
    server.on("/slow", {"sleep": 1.5, "body": b"late"})
    http = client(allow_private=True, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(HttpTimeout):
        get(http, f"http://127.0.0.1:{server.port}/slow", attempts=1)
    with pytest.raises(HttpTimeout):
        get(client(allow_private=True, read_timeout=5), f"http://127.0.0.1:{server.port}/slow", seconds=0.4)
    assert time.monotonic() - started < 1.5
    with pytest.raises(HttpTimeout):
        get(http, f"http://127.0.0.1:{server.port}/slow", seconds=-1)


# -- size cap ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        {"mode": "chunked", "body": b"x" * 5000},
        {"mode": "close", "body": b"x" * 5000},
        {"content_length": str(10**12), "body": b"x" * 10},
    ],
    ids=["chunked", "no-length", "declared-too-large"],
)
def test_size_cap_is_enforced_while_streaming(server, step):
    server.on("/big", step)
    with pytest.raises(ResponseTooLarge):
        get(client(allow_private=True), f"http://127.0.0.1:{server.port}/big", max_bytes=1000)
    record("download: body over the size cap (chunked / no length / declared)", 1)


def test_a_lying_content_length_never_yields_more_than_the_cap(server):
    server.on("/liar", {"content_length": "500", "body": b"x" * 5000})
    response = get(client(allow_private=True), f"http://127.0.0.1:{server.port}/liar", max_bytes=1000)
    assert len(response.body) <= 1000
    record("download: Content-Length smaller than the body", 1)


def test_chunked_body_under_the_cap_arrives_whole(server):
    server.on("/ok", {"mode": "chunked", "body": b"y" * 2500})
    assert get(client(allow_private=True), f"http://127.0.0.1:{server.port}/ok", max_bytes=3000).body == b"y" * 2500


# -- TLS: the vetted IP is connected, the hostname is verified ----------------------------------------


def _self_signed(tmp_path, hostname: str):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_connects_to_the_vetted_ip_and_verifies_the_hostname(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path, "images.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    tls_server = ScriptedServer(context)
    try:
        tls_server.on("/img.png", {"body": b"IMAGE"})
        network = Network(monkeypatch, tls_server.port)
        network.resolve("images.example.test", ["127.0.0.1"])
        network.resolve("other.example.test", ["127.0.0.1"])
        http = client(allow_private=True, ca_certs=str(cert))
        response = get(http, f"https://images.example.test:{tls_server.port}/img.png")
        assert response.body == b"IMAGE"
        assert network.connections == [("127.0.0.1", tls_server.port)]
        assert seen_sni == ["images.example.test"]
        assert tls_server.hosts == [f"images.example.test:{tls_server.port}"]
        # Same IP, a name the certificate does not cover: refused, not retried.
        with pytest.raises(HttpConnectionFailed, match="TLS") as failed:
            get(http, f"https://other.example.test:{tls_server.port}/img.png", attempts=3)
        assert failed.value.transient is False
    finally:
        tls_server.close()
