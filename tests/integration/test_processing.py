"""Images through the queue: real HTTP downloads, real image files, moto SQS and DynamoDB."""

from __future__ import annotations

import pytest
from harness import make_image
from reliability import record

FORMATS = {
    "baseline.jpg": ("JPEG", 640, 480, {}),
    "progressive.jpg": ("JPEG", 333, 517, {"progressive": True}),
    "image.png": ("PNG", 120, 80, {}),
    "image.webp": ("WEBP", 99, 101, {}),
    "image.gif": ("GIF", 1, 1000, {}),
}


@pytest.fixture
def images(image_server):
    urls = {}
    for name, (fmt, w, h, args) in FORMATS.items():
        urls[name] = image_server.add(f"/img/{name}", make_image(fmt, w, h, **args))
    urls["text"] = image_server.add("/img/readme.txt", b"just some text, not an image", "text/plain")
    urls["missing"] = image_server.url("/img/missing.jpg")
    return urls


def results_of(stack, job_id, limit=1000):
    out, token = [], None
    while True:
        query = {"jobid": job_id, "limit": limit}
        if token:
            query["next_token"] = token
        status, page = stack.api("GET", "/api/results", query=query)
        assert status == 200
        out += page["results"]
        token = page["next_token"]
        if not token:
            return out


def test_every_format_is_measured_and_the_job_completes(stack, images):
    names = list(FORMATS)
    job_id = stack.submit_job(
        [{"store_id": "RP00003", "image_url": [images[n] for n in names], "visit_time": "2024-03-15T10:00:00+05:30"}]
    )
    stack.drain()
    _status, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed", job
    assert job["progress"] == {"total": 5, "processed": 5, "succeeded": 5, "failed": 0}
    assert "error" not in job and job["finished_at"] >= job["created_at"]
    results = results_of(stack, job_id)
    assert [r["image_url"] for r in results] == [images[n] for n in names]  # submission order
    for r, name in zip(results, names, strict=True):
        _, w, h, _ = FORMATS[name]
        assert (r["status"], r["width"], r["height"], r["perimeter"]) == ("succeeded", w, h, 2 * (w + h))
        assert r["visit_time"] == "2024-03-15T10:00:00+05:30"  # as submitted
        assert r["error"] is None and r["processed_at"].endswith("Z")


def test_bad_images_fail_alone_and_the_job_ends_failed(stack, images, image_server):
    image_server.slow_seconds = 2.5  # above the 1 s read timeout the tests configure
    slow = image_server.add("/slow/late.jpg", make_image("JPEG", 10, 10))
    visits = [
        {
            "store_id": "RP00001",
            "image_url": [images["baseline.jpg"], images["missing"]],
            "visit_time": "2024-03-15T10:00:00Z",
        },
        {"store_id": "RP00002", "image_url": [images["text"]], "visit_time": "2024-03-15T11:00:00Z"},
        {"store_id": "RP00004", "image_url": [images["image.png"], slow], "visit_time": "2024-03-15T12:00:00Z"},
        {"store_id": "RP00005", "image_url": [images["image.gif"]], "visit_time": "2024-03-15T12:00:00Z"},
    ]
    job_id = stack.submit_job(visits)
    stack.drain()
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "failed"
    assert job["progress"] == {"total": 6, "processed": 6, "succeeded": 3, "failed": 3}
    errors = {e["store_id"]: e["error"] for e in job["error"]}
    assert set(errors) == {"RP00001", "RP00002", "RP00004"}
    assert "HTTP 404" in errors["RP00001"] and images["missing"] in errors["RP00001"]
    assert "not an image" in errors["RP00002"]
    assert "timed out" in errors["RP00004"]
    by_url = {r["image_url"]: r for r in results_of(stack, job_id)}
    assert by_url[images["baseline.jpg"]]["perimeter"] == 2 * (640 + 480)
    assert by_url[images["image.gif"]]["perimeter"] == 2 * (1 + 1000)
    assert by_url[images["missing"]]["status"] == "failed" and by_url[images["missing"]]["perimeter"] is None


def test_results_page_in_submission_order(stack, images):
    urls = [images["image.png"]] * 7
    visits = [
        {"store_id": f"RP0000{i}", "image_url": urls[:3], "visit_time": "2024-03-15T10:00:00Z"} for i in (1, 2, 3)
    ]
    job_id = stack.submit_job(visits)
    stack.drain()
    pages, token = [], None
    while True:
        query = {"jobid": job_id, "limit": 4} | ({"next_token": token} if token else {})
        _, page = stack.api("GET", "/api/results", query=query)
        pages.append(page["results"])
        token = page["next_token"]
        if not token:
            break
    assert [len(p) for p in pages] == [4, 4, 1]
    flat = [r["store_id"] for p in pages for r in p]
    assert flat == ["RP00001"] * 3 + ["RP00002"] * 3 + ["RP00003"] * 3


def test_every_message_delivered_twice_out_of_order_counts_once(stack, images):
    urls = [images["image.png"], images["missing"], images["image.webp"]] * 4
    job_id = stack.submit_job([{"store_id": "RP00006", "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"}])
    messages = stack.receive() + stack.receive()
    assert len({m["MessageId"] for m in messages}) == 12
    # Each message twice, reversed, in batches that mix originals and copies.
    deliveries = list(reversed(messages)) + messages
    for start in range(0, len(deliveries), 7):
        assert stack.invoke_process(deliveries[start : start + 7]) == set()
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["progress"] == {"total": 12, "processed": 12, "succeeded": 8, "failed": 4}
    assert job["status"] == "failed"
    assert len(results_of(stack, job_id)) == 12
    record("SQS: every message delivered twice, out of order", cases=24)


def test_duplicate_in_one_batch_counts_once(stack, images):
    job_id = stack.submit_job(
        [{"store_id": "RP00007", "image_url": [images["image.png"]], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    [message] = stack.receive()
    assert stack.invoke_process([message, dict(message, MessageId="copy-of-it")]) == set()
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["progress"]["processed"] == 1 and job["status"] == "completed"


def test_worker_dying_after_the_write_is_counted_once(stack, images):
    """The batch is recorded, but the messages are never deleted: SQS delivers them again."""
    job_id = stack.submit_job(
        [{"store_id": "RP00008", "image_url": [images["image.png"]] * 3, "visit_time": "2024-03-15T10:00:00Z"}]
    )
    first = stack.receive(visibility=0)
    assert len(first) == 3
    stack.invoke_process(first)  # ... and the worker dies before DeleteMessage
    stack.drain()  # redelivered and processed again
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["progress"] == {"total": 3, "processed": 3, "succeeded": 3, "failed": 0}
    assert job["status"] == "completed"
    assert stack.queue_depth() == 0
    record("Worker dies after the write, before deleting its messages", cases=3)


def test_a_finished_job_never_changes(stack, images):
    job_id = stack.submit_job(
        [{"store_id": "RP00009", "image_url": [images["image.png"]], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    [message] = stack.receive(visibility=0)
    stack.invoke_process([message])
    _, before = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert before["status"] == "completed"
    for _ in range(3):
        assert stack.invoke_process([message]) == set()
    _, after = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert after == before


def test_malformed_message_is_reported_failed_others_recorded(stack, images):
    job_id = stack.submit_job(
        [{"store_id": "RP00010", "image_url": [images["image.png"]], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    [good] = stack.receive()
    bad = dict(good, MessageId="bad-1", Body="{not json")
    assert stack.invoke_process([good, bad]) == {"bad-1"}
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert job["status"] == "completed"
