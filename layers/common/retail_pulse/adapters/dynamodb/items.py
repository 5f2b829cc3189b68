"""Plain Python values <-> DynamoDB attribute values, and the shapes of the items we store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from retail_pulse.adapters.dynamodb.keys import index_of, job_id_of, result_key, visit_partition
from retail_pulse.domain.models import FailureThreshold, ImageResult, ImageTask, Job
from retail_pulse.domain.rules import ERROR_TEXT_LIMIT

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Attribute values of `values`; None means "no such attribute" and is left out."""
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Plain values of an item; numbers come back as int (or float), not Decimal (nested ones stay
    Decimal, as boto3 gives them)."""
    return {key: _plain(value) for key, value in item.items()}


def _plain(value: dict[str, Any]) -> Any:
    # Strings and whole numbers, most of every item, without boto3's dispatch (a result page holds
    # thousands of values); the rest as boto3 deserializes them.
    if "S" in value:
        return value["S"]
    if "N" in value:
        text = value["N"]
        if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
            return int(text)
        number = Decimal(text)
        return int(number) if number == int(number) else float(number)
    return _deserializer.deserialize(value)


# -- item shapes ----------------------------------------------------------------------------------
def result_item(r: ImageResult) -> dict[str, Any]:
    """A result item. Results of Store Master stores also carry the visit index's keys: the index is
    sparse, and an area's stores spread over VISIT_SHARDS partitions (keys.visit_partition)."""
    t = r.task
    item: dict[str, Any] = {
        **result_key(t.job_id, t.index),
        "store_id": t.store_id,
        "image_url": t.image_url,
        "visit_time": t.visit_time,
        "status": r.status,
        "width": r.width,
        "height": r.height,
        "perimeter": r.perimeter,
        "error": r.error[:ERROR_TEXT_LIMIT] if r.error else None,
        "processed_at": r.processed_at,
        "duration_ms": r.duration_ms,
        "error_class": r.error_class if r.status == "failed" else None,
        # Cost shares, summed on the job by the counting transaction (domain/progress.py).
        "gb_ms": r.gb_ms,
        "request_milli": r.request_milli,
        "image_bytes": r.image_bytes,
        "expires_at": t.expires_at,
        # What the stream consumer needs to count the image (it sees only this item).
        "area": t.area,
        "client_id": t.client_id,  # its reports are the client's
        "visit_time_utc": t.visit_time_utc,
        "first_in_visit": t.first_in_visit or None,
        "retried": t.retried or None,
        "precounted": r.precounted or None,
    }
    if t.area and t.visit_time_utc:
        item["visit_area"] = visit_partition(t.area, t.store_id)
        client = f"{t.client_id}#" if t.client_id else ""  # a client's visits: one key range of its own
        item["visit_area_sk"] = f"{client}{t.store_id}#{t.visit_time_utc}#{t.job_id}#{t.index:08d}"
    return item


def result_from_item(item: dict[str, Any]) -> ImageResult:
    task = ImageTask(
        job_id=job_id_of(item["pk"]),
        index=index_of(item["sk"]),
        store_id=item["store_id"],
        image_url=item["image_url"],
        visit_time=item["visit_time"],
        expires_at=item.get("expires_at", 0),
        area=item.get("area"),
        client_id=item.get("client_id"),
        visit_time_utc=item.get("visit_time_utc"),
        first_in_visit=bool(item.get("first_in_visit")),
        retried=bool(item.get("retried")),
    )
    return ImageResult(
        task=task,
        status=item["status"],
        processed_at=item["processed_at"],
        width=item.get("width"),
        height=item.get("height"),
        perimeter=item.get("perimeter"),
        error=item.get("error"),
        duration_ms=item.get("duration_ms"),
        precounted=bool(item.get("precounted")),
        error_class=item.get("error_class"),
        gb_ms=item.get("gb_ms"),
        request_milli=item.get("request_milli"),
        image_bytes=item.get("image_bytes"),
    )


def _mark(item: dict[str, Any], name: str) -> tuple[str, int] | None:
    at, done = item.get(f"{name}_at"), item.get(f"{name}_processed")
    return (at, int(done)) if at is not None and done is not None else None


def job_from_item(item: dict[str, Any]) -> Job:
    threshold = FailureThreshold(item.get("tolerated_failure_percentage"), item.get("tolerated_failure_count"))
    return Job(
        job_id=item["job_id"],
        status=item["status"],
        total=item["total"],
        succeeded=item["succeeded"],
        failed=item["failed"],
        created_at=item["created_at"],
        finished_at=item.get("finished_at"),
        reason=item.get("reason"),
        cancelled=item.get("cancelled", 0),
        callback_url=item.get("callback_url"),
        retry_of=item.get("retry_of"),
        retried_by=item.get("retried_by"),
        notices_owed=frozenset(item.get("notices_owed") or ()),
        skipped=item.get("skipped", 0),
        threshold=threshold,
        labels=dict(item.get("labels") or {}),
        started_at=item.get("started_at"),
        progressed_at=item.get("progressed_at"),
        gb_ms=item.get("gb_ms", 0),
        request_milli=item.get("request_milli", 0),
        bytes_downloaded=item.get("bytes_downloaded", 0),
        rate_mark=_mark(item, "rate_mark"),
        rate_mark_before=_mark(item, "rate_mark_before"),
        events_emitted=frozenset(item.get("events_emitted") or ()),
        paused_at=item.get("paused_at"),
        phase=item.get("phase"),
        enqueued=item.get("enqueued", 0),
        manifest_errors=manifest_errors(item),
        manifest_error_count=item.get("manifest_error_count", 0),
        client_id=item.get("client_id"),
        max_concurrency=item.get("max_concurrency"),
    )


def manifest_errors(item: dict[str, Any]) -> list[dict]:
    """A refused manifest's errors (numbers inside a list come back as Decimal)."""
    return [{"line": int(e["line"]), "error": e["error"]} for e in item.get("manifest_errors") or []]
