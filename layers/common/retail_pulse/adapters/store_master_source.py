"""Loads the Store Master from a file path or s3://bucket/key, cached per container.

An S3 source is re-checked by ETag at most once a minute, so a new file applies
without a redeploy; a file source is re-read when its mtime changes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3

from retail_pulse.domain.store_master import StoreMaster, parse_store_master

RECHECK_SECONDS = 60.0


@dataclass
class _Cached:
    uri: str
    version: str
    checked_at: float
    master: StoreMaster


_lock = threading.Lock()
_cache: dict[str, _Cached] = {}


def load_store_master(uri: str, now: float | None = None) -> StoreMaster:
    now = time.monotonic() if now is None else now
    with _lock:
        cached = _cache.get(uri)
        if cached and now - cached.checked_at < RECHECK_SECONDS:
            return cached.master
        if uri.startswith("s3://"):
            master, version = _load_s3(uri, cached)
        else:
            master, version = _load_file(uri, cached)
        _cache[uri] = _Cached(uri=uri, version=version, checked_at=now, master=master)
        return master


def _load_file(path: str, cached: _Cached | None) -> tuple[StoreMaster, str]:
    version = str(os.stat(path).st_mtime_ns)
    if cached and cached.version == version:
        return cached.master, version
    with open(path, "rb") as f:
        return parse_store_master(f.read()), version


def _load_s3(uri: str, cached: _Cached | None) -> tuple[StoreMaster, str]:
    parts = urlsplit(uri)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    s3 = boto3.client("s3")
    if cached:
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
        if etag == cached.version:
            return cached.master, etag
    obj = s3.get_object(Bucket=bucket, Key=key)
    return parse_store_master(obj["Body"].read()), obj["ETag"]


def clear_cache() -> None:
    with _lock:
        _cache.clear()
