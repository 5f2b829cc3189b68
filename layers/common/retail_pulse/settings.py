"""Typed configuration, read from environment variables on first use (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from retail_pulse.domain.tenancy import parse_key_ids

SAMPLE_STORE_MASTER = Path(__file__).parent / "data" / "store_master_sample.csv"
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def Field(default: Any, *, ge: float | None = None, gt: float | None = None) -> Any:
    """A setting's default and bounds (checked by `Settings.__post_init__`)."""
    return field(default=default, metadata={"ge": ge, "gt": gt})


def _convert(name: str, value: Any, kind: str) -> Any:
    """Environment strings (or values given in code) as the field's type; ValueError naming the field."""
    if kind == "bool" and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError(f"{name.upper()}: not a boolean: {value!r}")
        return lowered in _TRUE
    try:
        return {"int": int, "float": float, "str": str, "bool": bool}[kind](value)
    except (TypeError, ValueError):
        raise ValueError(f"{name.upper()}: not a valid {kind}: {value!r}") from None


# A dataclass, not a pydantic model: importing pydantic is ~0.2 s of a cold start, and the queue
# consumers need it for nothing else (benchmarks/cold_start.py).
@dataclass
class Settings:
    jobs_table_name: str = ""
    idempotency_table_name: str = ""  # Idempotency-Key records of submit (Powertools idempotency)
    data_bucket_name: str = ""  # job image lists (for the stall sweeper) and the Store Master
    # A job with no progress for this long is finished by the stall sweeper; it must exceed the
    # queue's whole retry window (maxReceiveCount x VisibilityTimeout), which a test checks.
    stall_after_s: int = Field(default=2100, ge=60)
    image_queue_url: str = ""
    # process_image hands a result it could not write to the dead-letter queue on the message's
    # last delivery (the image queue's maxReceiveCount, mirrored here from the template).
    dead_letter_queue_url: str = ""
    max_receive_count: int = Field(default=5, ge=1)
    store_master_uri: str = ""
    job_ttl_days: int = Field(default=30, ge=1)
    processing_delay_min_s: float = Field(default=0.1, ge=0)
    processing_delay_max_s: float = Field(default=0.4, ge=0)
    download_connect_timeout_s: float = Field(default=3.0, gt=0)
    download_read_timeout_s: float = Field(default=10.0, gt=0)
    max_image_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_images_per_job: int = Field(default=50_000, ge=1)
    enqueue_concurrency: int = Field(default=8, ge=1)
    process_concurrency: int = Field(default=10, ge=1)
    # The stall sweeper sends `job.stalled` (once) for an ongoing job without progress for this long.
    stall_notice_after_s: int = Field(default=600, ge=60)
    # A batch's results are written concurrently, one PutItem each (1: one after the other).
    result_write_concurrency: int = Field(default=10, ge=1)
    # Downloads: attempts per image for transient failures (timeouts, 429, 5xx), within the deadline.
    download_attempts: int = Field(default=3, ge=1)
    # Image URLs may resolve to loopback/private/link-local addresses only when this is true (the
    # local stack and tests serve images from 127.0.0.1); in the cloud that would be SSRF.
    allow_private_image_hosts: bool = False
    # Input limits of submit (each breach is a 4xx naming the field; nothing is written).
    max_request_bytes: int = Field(default=6 * 1024 * 1024, ge=1)  # Lambda's synchronous payload limit
    max_visits_per_job: int = Field(default=10_000, ge=1)
    max_urls_per_visit: int = Field(default=100, ge=1)
    max_url_length: int = Field(default=2048, ge=16)
    max_store_id_length: int = Field(default=64, ge=1)
    max_visit_time_length: int = Field(default=64, ge=20)
    # Access-Control-Allow-Origin of API responses: "*" or one origin (e.g. https://dashboard.example.com).
    cors_allow_origin: str = "*"
    # Job completion notices (logic/notify.py): the SNS topic, and the key signing callbacks.
    job_events_topic_arn: str = ""
    # The ARN of the Secrets Manager secret whose value signs callbacks (fetched and cached by the
    # notifier, never in the environment); empty: callbacks are not sent, so submit refuses them.
    callback_signing_secret_arn: str = ""
    # Clients: the API key ids (requestContext.identity.apiKeyId) that see every client's jobs,
    # separated by commas (template parameter AdminApiKeyIds); empty: no admin.
    admin_api_key_ids: str = ""
    # Most images of one client measured at once (template parameter ClientImageQuota; domain/quota.py);
    # 0: no quota.
    client_image_quota: int = Field(default=0, ge=0)
    # Jobs of any size (logic/manifests.py, fanout.py, exports.py): manifests uploaded to the data bucket
    # and fanned out by the fan-out function from its queue; results exported to files by the export function.
    fan_out_queue_url: str = ""
    export_queue_url: str = ""
    max_images_per_manifest: int = Field(default=1_000_000, ge=1)
    max_manifest_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    upload_url_expiry_s: int = Field(default=900, ge=60)  # a presigned upload URL's life
    export_url_expiry_s: int = Field(default=3600, ge=60)  # a presigned export download URL's life
    retry_inline_max_images: int = Field(default=5000, ge=0)  # a retry of more failed images is fanned out
    fan_out_max_receives: int = Field(default=5, ge=1)  # the fan-out queue's maxReceiveCount (template)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _convert(f.name, getattr(self, f.name), str(f.type))
            if f.metadata.get("ge") is not None and value < f.metadata["ge"]:
                raise ValueError(f"{f.name.upper()}: must be >= {f.metadata['ge']}")
            if f.metadata.get("gt") is not None and value <= f.metadata["gt"]:
                raise ValueError(f"{f.name.upper()}: must be > {f.metadata['gt']}")
            setattr(self, f.name, value)
        if self.processing_delay_max_s < self.processing_delay_min_s:
            raise ValueError("PROCESSING_DELAY_MAX_S must be >= PROCESSING_DELAY_MIN_S")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @property
    def callbacks_enabled(self) -> bool:
        return bool(self.callback_signing_secret_arn)

    @property
    def admin_key_ids(self) -> frozenset[str]:
        return parse_key_ids(self.admin_api_key_ids)

    @property
    def effective_store_master_uri(self) -> str:
        return self.store_master_uri or str(SAMPLE_STORE_MASTER)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; cached per container. Empty values mean 'use the default'."""
    values: dict[str, Any] = {}  # raw strings; Settings converts and checks each field
    for name in Settings.field_names():
        raw = os.environ.get(name.upper())
        if raw not in (None, ""):
            values[name] = raw
    return Settings(**values)
