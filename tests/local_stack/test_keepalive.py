"""The local AWS endpoints' server keeps a connection open across requests (as AWS's endpoints do):
each answer carries its length, a body is read whole whatever the app reads of it, a HEAD keeps the
length a GET would have, and a chunked body is read whole too."""

from __future__ import annotations

import http.client
import threading

import pytest

from local_stack.keepalive import KeepAliveServer


def app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0) // 2)  # reads half the body
    assert "HTTP_TRANSFER_ENCODING" not in environ  # the body comes decoded, with its length
    answer = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {environ['QUERY_STRING']} {len(body)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1234"), ("Connection", "close")])
    return [answer[:5], answer[5:]]


@pytest.fixture
def server():
    server = KeepAliveServer("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_connection_serves_many_requests(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    answers = []
    for path, body in (("/a%20b?x=1", b"0123456789"), ("/second", b""), ("/third", b"x" * 3_000_000)):
        connection.request("POST", path, body=body)
        response = connection.getresponse()
        answers.append((response.read().decode(), response.getheader("Content-Length"), response.will_close))
        socket_in_use = connection.sock
    assert answers == [
        ("POST /a b x=1 5", "15", False),
        ("POST /second  0", "15", False),
        ("POST /third  1500000", "20", False),
    ]
    assert connection.sock is socket_in_use  # never reconnected

    connection.request("HEAD", "/object")
    head = connection.getresponse()
    assert (head.read(), head.getheader("Content-Length")) == (b"", "1234")


def test_a_chunked_body_is_read_whole(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(2):  # the connection is clean after it: a second request on it is answered
        connection.request("PUT", "/upload", body=iter([b"abc", b"x" * 100_000, b"defg"]), encode_chunked=True)
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"PUT /upload  50003")
