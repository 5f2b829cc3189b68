"""The data bucket's files as streams: presigned URLs for clients (uploads in, exports out), files read
from an offset in chunks, and files written as multipart uploads. Never a whole file in memory.

Presigned URLs are signed with SigV4 (`s3v4`) for the endpoint this client talks to: S3 in the cloud,
the local stack's S3 (`AWS_ENDPOINT_URL`, 127.0.0.1) locally, so a client on this machine can use them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from retail_pulse.ports import StoredFile

CHUNK_BYTES = 1024 * 1024  # what one read of a streamed file returns
PART_BYTES = 5 * 1024 * 1024  # a multipart upload's parts: S3's least (but the last), 50 GiB in 10,000
READ_ATTEMPTS = 5  # a stream broken mid-file is read on from where it broke


class S3Files:
    def __init__(self, bucket: str, client: Any | None = None) -> None:
        self.bucket = bucket
        self.client = client or boto3.client(
            "s3", config=Config(signature_version="s3v4", retries={"mode": "standard"}, max_pool_connections=16)
        )

    # -- URLs for clients ---------------------------------------------------------------------------
    def presign_put(self, key: str, size: int | None, expires_s: int) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if size is not None:
            # Content-Length is then a signed header: S3 refuses a body of any other length.
            params["ContentLength"] = size
        return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_s)

    def presign_get(self, key: str, expires_s: int, filename: str) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)

    # -- reading ------------------------------------------------------------------------------------
    def head(self, key: str) -> StoredFile | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredFile(size=int(resp["ContentLength"]), version=_version(resp.get("VersionId")))

    def read_start(self, key: str, version: str | None, size: int) -> bytes:
        resp = self.client.get_object(**self._object(key, version), Range=f"bytes=0-{size - 1}")
        return resp["Body"].read()

    def stream(self, key: str, version: str | None, offset: int = 0) -> Iterator[bytes]:
        """The file from `offset` on, CHUNK_BYTES at a time; a connection that breaks mid-file is
        opened again at the byte it broke at (the same version: the bytes cannot have changed)."""
        attempts = 0
        while True:
            try:
                resp = self.client.get_object(**self._object(key, version), Range=f"bytes={offset}-")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                    return  # at (or past) the end: nothing more
                raise
            try:
                for chunk in resp["Body"].iter_chunks(CHUNK_BYTES):
                    offset += len(chunk)
                    yield chunk
                return
            except (BotoCoreError, OSError):
                attempts += 1
                if attempts >= READ_ATTEMPTS:
                    raise
            finally:
                resp["Body"].close()

    def _object(self, key: str, version: str | None) -> dict[str, str]:
        return {"Bucket": self.bucket, "Key": key, **({"VersionId": version} if version else {})}

    # -- writing ------------------------------------------------------------------------------------
    def writer(self, key: str, content_type: str) -> MultipartWriter:
        return MultipartWriter(self.client, self.bucket, key, content_type)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def _version(value: str | None) -> str | None:
    return value if value and value != "null" else None  # "null": an object written before versioning


class MultipartWriter:
    """Bytes in, PART_BYTES parts out: at most one part is held in memory."""

    def __init__(self, client: Any, bucket: str, key: str, content_type: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        self.parts: list[dict] = []
        self.buffer = bytearray()

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= PART_BYTES:
            self._upload_part()

    def _upload_part(self) -> None:
        number = len(self.parts) + 1
        # The buffer itself (botocore takes a bytearray): bytes(...) would hold the part twice.
        resp = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=self.buffer
        )
        self.parts.append({"PartNumber": number, "ETag": resp["ETag"]})
        self.buffer.clear()

    def close(self) -> None:
        if self.buffer or not self.parts:
            self._upload_part()  # the last part may be small (an empty file is one empty part)
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def abort(self) -> None:
        with contextlib.suppress(ClientError, BotoCoreError):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
