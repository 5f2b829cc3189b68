"""Requests the gateway cannot take at face value (raw sockets): every one gets an answer in the
API's error shape, none a dropped connection, and the function never runs on them."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from gateway_kit import FakePool, echo, parse_response, raw_request
from reliability import record

from local_stack.gateway import MAX_REQUEST_BYTES

SUBMIT = ("POST", "/api/submit")


def _post(headers: str, body: bytes = b"") -> bytes:
    return f"POST /api/submit HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body


@pytest.mark.parametrize(
    "content_length",
    ["abc", "-5", "+5", "1_0", "٣", "5, 6"],
    ids=["abc", "negative", "plus", "underscore", "arabic", "list"],
)
def test_a_malformed_content_length_is_400_json(start_gateway, content_length):
    pool = FakePool()
    gw = start_gateway({SUBMIT: pool})
    data = f"POST /api/submit HTTP/1.1\r\nHost: x\r\nContent-Length: {content_length}\r\n\r\n12345".encode()
    status, headers, body = parse_response(raw_request(gw.port, data))
    assert status == 400
    assert set(json.loads(body)) == {"error"}
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"  # the template's DEFAULT_4XX headers
    assert headers["connection"] == "close"
    assert pool.events == []
    record("Local gateway: malformed Content-Length, short or bad chunked bodies: 400 JSON, no function run", 1)


def test_conflicting_content_lengths_are_400(start_gateway):
    gw = start_gateway({SUBMIT: FakePool()})
    raw = raw_request(gw.port, _post("Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"))
    assert parse_response(raw)[0] == 400
    record("Local gateway: malformed Content-Length, short or bad chunked bodies: 400 JSON, no function run", 1)


def test_a_body_shorter_than_its_content_length_is_400_after_the_read_timeout(start_gateway):
    pool = FakePool()
    gw = start_gateway({SUBMIT: pool}, body_read_timeout=0.3)
    started = time.monotonic()
    status, _, body = parse_response(raw_request(gw.port, _post("Content-Length: 100\r\n", b'{"count"')))
    assert status == 400 and "error" in json.loads(body)
    assert time.monotonic() - started < 5
    assert pool.events == []
    record("Local gateway: malformed Content-Length, short or bad chunked bodies: 400 JSON, no function run", 1)


def test_a_body_cut_short_by_the_client_closing_is_400(start_gateway):
    gw = start_gateway({SUBMIT: FakePool()})
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock:
        sock.sendall(_post("Content-Length: 100\r\n", b"{}"))
        sock.shutdown(socket.SHUT_WR)
        raw = sock.recv(65536)
    assert parse_response(raw)[0] == 400
    record("Local gateway: malformed Content-Length, short or bad chunked bodies: 400 JSON, no function run", 1)


def test_a_chunked_body_reaches_the_function_whole(start_gateway):
    pool = FakePool(echo)
    gw = start_gateway({SUBMIT: pool})
    chunks = [b'{"count": ', b"1}"]
    response = requests.post(gw.url + "/api/submit", data=iter(chunks), timeout=10)
    assert response.status_code == 200
    assert response.json()["body"] == '{"count": 1}'


def test_a_malformed_chunk_size_is_400(start_gateway):
    gw = start_gateway({SUBMIT: FakePool()})
    raw = raw_request(gw.port, _post("Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"))
    assert parse_response(raw)[0] == 400
    record("Local gateway: malformed Content-Length, short or bad chunked bodies: 400 JSON, no function run", 1)


def test_a_body_over_10_mb_is_413_in_the_gateway_responses_shape(start_gateway):
    pool = FakePool()
    gw = start_gateway({SUBMIT: pool})
    response = requests.post(gw.url + "/api/submit", data=b"x" * (MAX_REQUEST_BYTES + 1), timeout=30)
    assert response.status_code == 413
    assert response.json() == {"error": "Request Too Long"}
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert pool.events == []


def test_keep_alive_carries_on_after_a_good_request(start_gateway):
    pool = FakePool()
    gw = start_gateway({SUBMIT: pool})
    one = _post("Content-Length: 2\r\n", b"{}")
    raw = raw_request(gw.port, one + one.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n"))
    assert raw.count(b"HTTP/1.1 200") == 2
    assert len(pool.events) == 2
