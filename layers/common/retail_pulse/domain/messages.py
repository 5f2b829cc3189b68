"""The image message codec: one JSON object per image (the queue's messages and the job-spec lines)."""

from __future__ import annotations

import json

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.models import ImageTask


def task_to_message(task: ImageTask) -> str:
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
    return json.dumps(body, separators=(",", ":"))


def task_from_message(body: str) -> ImageTask:
    """Raises ValueError on a body that is not one of our messages."""
    try:
        data = json.loads(body)
        # Older messages lack visit_time_utc: derive it from visit_time (validated at submit).
        utc = parse_visit_time(data.get("visit_time_utc") or data["visit_time"])
        task = ImageTask(
            job_id=str(data["job_id"]),
            index=int(data["index"]),
            store_id=str(data["store_id"]),
            image_url=str(data["image_url"]),
            visit_time=str(data["visit_time"]),
            expires_at=int(data["expires_at"]),
            area=str(data["area"]) if data.get("area") else None,
            visit_time_utc=utc,
            first_in_visit=data.get("first_in_visit") is True,
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # AttributeError: not an object
        raise ValueError(f"malformed image message: {exc}") from None
    return task
