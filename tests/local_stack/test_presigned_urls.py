"""Presigned S3 URLs against the local stack's AWS endpoint, as a client uses them: boto3 signs them
for 127.0.0.1 (path style, s3v4), and the endpoint checks them as S3 does (expiry, signature, a signed
Content-Length), which moto alone does not. The data bucket as the template makes it: versioned, with
the CORS rules a browser upload needs."""

from __future__ import annotations

import time

import boto3
import pytest
import requests
from botocore.config import Config

from devkit.template import Stack
from local_stack import presigned
from local_stack.aws import AwsEndpoint


@pytest.fixture(scope="module")
def s3():
    endpoint = AwsEndpoint().start()
    stack = Stack(prefix="local")
    config = Config(signature_version="s3v4")
    clients = [endpoint.client(name, config=config) for name in ("dynamodb", "sqs", "s3", "sns")]
    stack.provision(*clients)
    client = endpoint.client("s3", config=config)
    client.bucket = stack.refs["DataBucket"]
    yield client
    endpoint.stop()


def put_url(s3, key: str, size: int | None = None, expires: int = 60) -> str:
    params = {"Bucket": s3.bucket, "Key": key} | ({"ContentLength": size} if size is not None else {})
    return s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)


def test_an_upload_url_takes_the_file_and_a_download_url_gives_it_back(s3):
    url = put_url(s3, "uploads/a", size=11)
    assert url.startswith("http://127.0.0.1:")  # a client on this machine reaches it
    assert requests.put(url, data=b"hello world", timeout=10).status_code == 200
    head = s3.head_object(Bucket=s3.bucket, Key="uploads/a")
    assert head["ContentLength"] == 11 and head["VersionId"]  # the bucket is versioned, as the template says
    get = s3.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": "uploads/a"}, ExpiresIn=60)
    assert requests.get(get, timeout=10).content == b"hello world"


@pytest.mark.parametrize(
    ("body", "tamper", "code"),
    [
        (b"hello world, and more", None, "SignatureDoesNotMatch"),  # the signed Content-Length binds the size
        (b"hello world", ("uploads/b", "uploads/c"), "SignatureDoesNotMatch"),  # another key
        (b"hello world", ("X-Amz-Expires=60", "X-Amz-Expires=600"), "SignatureDoesNotMatch"),  # a longer life
        (b"hello world", ("Credential=local", "Credential=other"), "InvalidAccessKeyId"),
    ],
)
def test_what_s3_refuses_the_local_endpoint_refuses(s3, body, tamper, code):
    url = put_url(s3, "uploads/b", size=11)
    if tamper:
        url = url.replace(*tamper)
    response = requests.put(url, data=body, timeout=10)
    assert response.status_code == 403
    assert f"<Code>{code}</Code>" in response.text


def test_an_expired_url_is_refused(s3):
    url = put_url(s3, "uploads/c", size=2, expires=1)
    time.sleep(2.1)
    response = requests.put(url, data=b"hi", timeout=10)
    assert response.status_code == 403 and "Request has expired" in response.text


def test_a_browser_may_upload_from_the_dashboard_origin(s3):
    """The CORS preflight of a PUT from another origin (the dashboard on the API's port)."""
    url = put_url(s3, "uploads/d", size=2)
    # As a browser sends it: to the whole presigned URL (its query too), with no signature of its own.
    for target in (url, url.split("?")[0]):
        response = requests.options(
            target,
            headers={
                "Origin": "http://127.0.0.1:3000",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
        assert "PUT" in response.headers["Access-Control-Allow-Methods"]


def test_the_signature_check_matches_botocores_own_signing():
    """The verifier against botocore's signer on made-up requests (keys with spaces and unicode)."""
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:4566",
        region_name="us-east-1",
        aws_access_key_id=presigned.LOCAL_ACCESS_KEY,
        aws_secret_access_key=presigned.LOCAL_SECRET_KEY,
        config=Config(signature_version="s3v4"),
    )
    for key in ("uploads/plain", "uploads/with space+plus", "exports/é.csv"):
        for method, operation, params in (
            ("PUT", "put_object", {"ContentLength": 5}),
            ("GET", "get_object", {"ResponseContentDisposition": 'attachment; filename="x.csv"'}),
        ):
            url = client.generate_presigned_url(operation, Params={"Bucket": "b", "Key": key, **params}, ExpiresIn=60)
            prepared = requests.Request(method, url, data=b"12345" if method == "PUT" else None).prepare()
            path_and_query = prepared.url.split("127.0.0.1:4566", 1)[1]
            environ = {
                "REQUEST_METHOD": method,
                "RAW_URI": path_and_query,
                "QUERY_STRING": path_and_query.split("?", 1)[1],
                "HTTP_HOST": "127.0.0.1:4566",
                "CONTENT_LENGTH": prepared.headers.get("Content-Length", ""),
            }
            assert presigned.check(environ) is None, (key, method)
            environ["REQUEST_METHOD"] = "DELETE"
            assert presigned.check(environ)[0].startswith("403"), (key, method)
