"""Job lifecycle through the local stack: cancel mid-job, retry, signed callbacks, one topic message per job."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from harness import make_image
from reliability import record

from retail_pulse_cli.__main__ import main as cli_main

from .conftest import CALLBACK_SIGNING_SECRET

IMAGE = make_image("JPEG", 40, 30)


class Server:
    """Slow images (GET, counted with their start times) and a callback receiver (POST)."""

    def __init__(self, image_delay_s: float) -> None:
        self.downloads: list[tuple[float, str]] = []  # (start, path)
        self.callbacks: list[tuple[dict, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.downloads.append((time.monotonic(), self.path))
                time.sleep(image_delay_s)
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(IMAGE)))
                self.end_headers()
                self.wfile.write(IMAGE)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.callbacks.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server(image_delay_s=0.2)
    yield running
    running.close()


def topic_messages(local_stack) -> list[dict]:
    response = local_stack.get("/_local/topics/JobEventsTopic")
    assert response.status_code == 200
    return [json.loads(m["message"]) for m in response.json()]


def wait_for(predicate, timeout: float = 15, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_cancel_mid_job_stops_downloads_and_keeps_counts_exact(local_stack, server):
    visits = [
        {
            "store_id": "RP00009",
            "image_url": [f"{server.base}/img/{v}-{i}.jpg" for i in range(100)],
            "visit_time": f"2024-03-15T1{v}:00:00Z",
        }
        for v in range(3)
    ]
    job_id = local_stack.submit(visits)
    wait_for(lambda: local_stack.get("/api/status", jobid=job_id).json()["progress"]["processed"] >= 10)
    response = local_stack.post(f"/api/jobs/cancel?jobid={job_id}", None)
    cancelled_at = time.monotonic()
    assert response.status_code == 200, (response.text, local_stack.get("/api/status", jobid=job_id).text)
    body = response.json()
    progress = body["progress"]
    assert body["status"] == "cancelled"
    assert progress["processed"] == progress["total"] == 300
    assert progress["succeeded"] + progress["failed"] + progress["cancelled"] == 300 and progress["cancelled"] > 0

    time.sleep(4)  # in-flight batches end, queued messages arrive and are skipped
    # Batches already downloading when the cancel landed finish their downloads (a transient failure
    # may be retried) and are dropped at the write; no other image is downloaded after it.
    # Only batches that read the job before the cancel may still download: at most the batches in
    # flight (the fixture's --max-concurrency 4 x 10 images), and none long after the cancel (the
    # bound is generous: a loaded 2-core machine delays a batch between its read and its downloads).
    late = {path for started, path in server.downloads if started > cancelled_at}
    assert len(late) <= 4 * 10, sorted(late)
    assert all(started <= cancelled_at + 3 for started, _ in server.downloads)
    assert len({path for _, path in server.downloads}) < 300
    after = local_stack.get("/api/status", jobid=job_id).json()
    assert after["progress"] == progress and after["status"] == "cancelled"
    assert len(local_stack.results(job_id)) == progress["succeeded"] + progress["failed"]
    conflict = local_stack.post(f"/api/jobs/cancel?jobid={job_id}", None)
    assert conflict.status_code == 409 and "error" in conflict.json()
    assert local_stack.post("/api/jobs/cancel?jobid=nope", None).status_code == 400
    # The ended notice (a job past 25 % before the cancel also sent its job.progress event).
    notices = [m for m in topic_messages(local_stack) if m["job_id"] == job_id and m["event"] == "job.ended"]
    assert [(m["status"], m["progress"]) for m in notices] == [("cancelled", progress)]


def test_retry_of_a_404_image_once_it_exists(local_stack, image_server, capsys):
    late = image_server.url("/e2e-lifecycle/late.jpg")
    ok = image_server.add("/e2e-lifecycle/ok.png", make_image("PNG", 10, 20), "image/png")
    job_id = local_stack.submit(
        [{"store_id": "RP00010", "image_url": [ok, late], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    assert local_stack.wait(job_id)["status"] == "failed"
    area = local_stack.get("/api/stores", q="RP00010").json()["results"][0]["area"]

    def store_report() -> dict:
        return local_stack.get("/api/reports/stores", area=area, storeid="RP00010").json()["stores"][0]

    before = store_report()
    image_server.add("/e2e-lifecycle/late.jpg", make_image("JPEG", 7, 3))
    response = local_stack.post(f"/api/jobs/retry?jobid={job_id}", None)
    assert response.status_code == 201, response.text
    retry_id = response.json()["job_id"]
    retried = local_stack.wait(retry_id)
    assert retried["status"] == "completed" and retried["retry_of"] == job_id
    # The retry counts no new visit and no new image: the image moves from failed to succeeded.
    after = store_report()
    moved = {k: after[k] - before[k] for k in ("visits", "images", "failed_images")}
    assert moved == {"visits": 0, "images": 0, "failed_images": -1}, (before, after)
    assert retried["progress"] == {"total": 1, "processed": 1, "succeeded": 1, "failed": 0}
    assert local_stack.get("/api/status", jobid=job_id).json()["retried_by"] == retry_id
    assert [r["perimeter"] for r in local_stack.results(retry_id)] == [20]
    assert local_stack.post(f"/api/jobs/retry?jobid={job_id}", None).status_code == 409
    listed = local_stack.get("/api/jobs", limit=2).json()["jobs"]
    assert [j["job_id"] for j in listed] == [retry_id, job_id]
    assert cli_main(["--base-url", local_stack.url, "list", "--limit", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [[retry_id, "completed"], [job_id, "failed"]]
    assert cli_main(["--base-url", local_stack.url, "retry", job_id]) == 2  # 409: already retried
    record("retry of a failed image: the store's report moves it from failed to succeeded, never doubles", cases=1)


def test_one_signed_callback_and_one_topic_message_per_job(local_stack, server):
    # The first finish attempt is refused more often than botocore retries: the finishing batch fails,
    # SQS delivers it again, and the second delivery finishes the job: still one notice.
    local_stack.inject_fault("UpdateItem", "ProvisionedThroughputExceededException", count=3)
    jobs = []
    for n in range(2):
        body = {
            "count": 1,
            "visits": [
                {
                    "store_id": "RP00001",
                    "image_url": [f"{server.base}/cb/{n}.jpg"],
                    "visit_time": "2024-03-15T10:00:00Z",
                }
            ],
            "callback_url": f"{server.base}/hooks/{n}",
        }
        response = local_stack.post("/api/submit", body)
        assert response.status_code == 201, response.text
        jobs.append(response.json()["job_id"])
    for job_id in jobs:
        assert local_stack.wait(job_id, timeout=30)["status"] == "completed"
    wait_for(lambda: len(server.callbacks) >= 2)
    time.sleep(3)  # room for a duplicate to show up
    assert sorted(json.loads(body)["job_id"] for _, body in server.callbacks) == sorted(jobs)
    key = local_stack.get("/api/callbacks/key").json()["signing_key"]  # this client's, as a receiver gets it
    assert key != CALLBACK_SIGNING_SECRET  # derived from the stack's secret, per client
    for headers, body in server.callbacks:
        expected = "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Retail-Pulse-Signature"] == expected
        assert json.loads(body)["status"] == "completed"
    notices = [m["job_id"] for m in topic_messages(local_stack) if m["job_id"] in jobs]
    assert sorted(notices) == sorted(jobs)
