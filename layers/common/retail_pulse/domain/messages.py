"""The image message codec: one JSON object per image (the queue's messages and the job-spec lines)."""

from __future__ import annotations

import json

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.models import ImageResult, ImageTask


def task_to_message(task: ImageTask) -> str:
    return json.dumps(_task_fields(task), separators=(",", ":"))


def _task_fields(task: ImageTask) -> dict:
    body: dict = {
        "job_id": task.job_id,
        "index": task.index,
        "store_id": task.store_id,
        "image_url": task.image_url,
        "visit_time": task.visit_time,
        "expires_at": task.expires_at,
    }
    # For reports and visit queries; absent from messages sent before they existed.
    if task.area is not None:
        body["area"] = task.area
    if task.visit_time_utc is not None:
        body["visit_time_utc"] = task.visit_time_utc
    if task.first_in_visit:
        body["first_in_visit"] = True
    if task.retried:
        body["retried"] = True
    if task.client_id is not None:
        body["client_id"] = task.client_id
    return body


def task_from_message(body: str) -> ImageTask:
    """Raises ValueError on a body that is not one of our messages."""
    try:
        return _task(json.loads(body))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # AttributeError: not an object
        raise ValueError(f"malformed image message: {exc}") from None


def _task(data: dict) -> ImageTask:
    # Older messages lack visit_time_utc: derive it from visit_time (validated at submit).
    utc = parse_visit_time(data.get("visit_time_utc") or data["visit_time"])
    return ImageTask(
        job_id=str(data["job_id"]),
        index=int(data["index"]),
        store_id=str(data["store_id"]),
        image_url=str(data["image_url"]),
        visit_time=str(data["visit_time"]),
        expires_at=int(data["expires_at"]),
        area=str(data["area"]) if data.get("area") else None,
        visit_time_utc=utc,
        first_in_visit=data.get("first_in_visit") is True,
        retried=data.get("retried") is True,
        client_id=str(data["client_id"]) if data.get("client_id") else None,
    )


def unrecorded_result_message(result: ImageResult, reason: str) -> str:
    """An image whose result was measured but could not be written, handed to the dead-letter queue
    with its result and the reason, so the dead-letter consumer records what was measured."""
    body = _task_fields(result.task)
    body["result"] = {
        "status": result.status,
        "processed_at": result.processed_at,
        "width": result.width,
        "height": result.height,
        "perimeter": result.perimeter,
        "error": result.error,
        "error_class": result.error_class,
        "duration_ms": result.duration_ms,
        "gb_ms": result.gb_ms,
        "request_milli": result.request_milli,
        "image_bytes": result.image_bytes,
    }
    body["unrecorded_reason"] = reason
    return json.dumps(body, separators=(",", ":"))


def dead_letter_from_message(body: str) -> tuple[ImageTask, ImageResult | None]:
    """A dead-lettered message: its task, and the result it carries when processing measured the image
    but could not record it (see unrecorded_result_message). Raises ValueError when malformed."""
    try:
        data = json.loads(body)
        task = _task(data)
        carried = data.get("result")
        if carried is None:
            return task, None
        result = ImageResult(
            task=task,
            status="succeeded" if carried["status"] == "succeeded" else "failed",
            processed_at=str(carried["processed_at"]),
            width=carried.get("width"),
            height=carried.get("height"),
            perimeter=carried.get("perimeter"),
            error=carried.get("error"),
            error_class=carried.get("error_class"),
            duration_ms=carried.get("duration_ms"),
            gb_ms=carried.get("gb_ms"),
            request_milli=carried.get("request_milli"),
            image_bytes=carried.get("image_bytes"),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"malformed image message: {exc}") from None
    return task, result
