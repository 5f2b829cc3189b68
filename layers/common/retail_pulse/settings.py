"""Typed configuration, read from environment variables on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

SAMPLE_STORE_MASTER = Path(__file__).parent / "data" / "store_master_sample.csv"


class Settings(BaseModel):
    jobs_table_name: str = ""
    image_queue_url: str = ""
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

    @model_validator(mode="after")
    def _delays_ordered(self) -> Settings:
        if self.processing_delay_max_s < self.processing_delay_min_s:
            raise ValueError("PROCESSING_DELAY_MAX_S must be >= PROCESSING_DELAY_MIN_S")
        return self

    @property
    def effective_store_master_uri(self) -> str:
        return self.store_master_uri or str(SAMPLE_STORE_MASTER)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment; cached per container. Empty values mean 'use the default'."""
    values = {}
    for name in Settings.model_fields:
        raw = os.environ.get(name.upper())
        if raw not in (None, ""):
            values[name] = raw
    return Settings(**values)
