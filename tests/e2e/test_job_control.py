"""Job control through the local stack: failure thresholds crossed by concurrent batches, pause
against the last batch, selective retry against a running retry, the live results feed followed
while the job runs, signed progress events, labels; and the CLI for each."""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from reliability import record

from local_stack.runner import start_local_stack
from retail_pulse_cli.__main__ import main as cli_main

from .conftest import CALLBACK_SIGNING_SECRET
from .test_job_lifecycle import Server, topic_messages, wait_for


@pytest.fixture
def slow():
    running = Server(image_delay_s=0.3)
    yield running
    running.close()


@pytest.fixture
def slower():
    running = Server(image_delay_s=0.8)  # under the stack's 1 s read timeout
    yield running
    running.close()


def visits_of(base: str, prefix: str, n: int, per_visit: int = 10, store: str = "RP00001") -> list[dict]:
    return [
        {
            "store_id": store,
            "image_url": [f"{base}/{prefix}/{v}-{i}.jpg" for i in range(min(per_visit, n - v * per_visit))],
            "visit_time": f"2024-03-15T10:{v % 60:02d}:00Z",
        }
        for v in range((n + per_visit - 1) // per_visit)
    ]


def submit(local_stack, visits, **extra) -> str:
    response = local_stack.post("/api/submit", {"count": len(visits), "visits": visits, **extra})
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def status(local_stack, job_id) -> dict:
    return local_stack.get("/api/status", jobid=job_id).json()


def settle(local_stack, job_id, quiet_s: float = 3.0, timeout: float = 60) -> dict:
    """The job's status once its counts stopped moving for `quiet_s`."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        body = status(local_stack, job_id)
        key = (body["status"], json.dumps(body["progress"], sort_keys=True))
        if key != last:
            last, since = key, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} kept moving: {last}")


def test_a_threshold_crossed_by_concurrent_batches_fails_the_job_once_and_skips_the_rest(
    local_stack, image_server, slow
):
    missing = image_server.url("/e2e-control/missing")
    visits = [
        {
            "store_id": "RP00005",
            # Each batch: five quick 404s and five slow images: failures arrive from up to four
            # batches at once, while later batches are still queued.
            "image_url": [f"{missing}-{v}-{i}.jpg" for i in range(5)]
            + [f"{slow.base}/t/{v}-{i}.jpg" for i in range(5)],
            "visit_time": "2024-03-15T10:00:00Z",
        }
        for v in range(30)
    ]
    job_id = submit(local_stack, visits, tolerated_failure_count=15)
    body = local_stack.wait(job_id, timeout=60)
    assert body["status"] == "failed" and body["reason"].startswith("failure threshold exceeded")
    p = body["progress"]
    assert p["processed"] == p["total"] == 300 and p["failed"] > 15 and p["skipped"] > 0
    assert len(slow.downloads) < 150  # the skipped images were never downloaded
    assert p["succeeded"] + p["failed"] + p["skipped"] == 300
    after = settle(local_stack, job_id)
    assert after["progress"] == p  # late results were dropped, not counted
    assert len(local_stack.results(job_id)) == p["succeeded"] + p["failed"]
    notices = [m for m in topic_messages(local_stack) if m["job_id"] == job_id and m["event"] == "job.ended"]
    assert len(notices) == 1 and notices[0]["progress"] == p
    record("e2e: failure threshold crossed by concurrent batches", cases=300, lost=0, doubled=0, stuck=0)


def test_pause_against_the_last_batches_then_resume_keeps_counts_exact(local_stack, slower, capsys):
    slow = slower
    job_id = submit(local_stack, visits_of(slow.base, "pause", 200), labels={"suite": "e2e-pause"})
    wait_for(lambda: status(local_stack, job_id)["progress"]["processed"] >= 20, timeout=60, interval=0.05)
    assert cli_main(["--base-url", local_stack.url, "pause", job_id]) == 0
    assert "paused" in capsys.readouterr().out
    paused_at = time.monotonic()
    paused = settle(local_stack, job_id)  # batches in flight end and are counted; the rest are parked
    assert paused["status"] in ("paused", "completed"), paused
    late = [path for started, path in slow.downloads if started > paused_at + 2]
    assert late == []  # nothing downloaded once the batches in flight at the pause ended
    if paused["status"] == "paused":
        assert paused["throughput"]["recent_per_min"] == 0 and paused["phases"]["queued"] > 0
        assert local_stack.post(f"/api/jobs/pause?jobid={job_id}", None).status_code == 409
        assert cli_main(["--base-url", local_stack.url, "resume", job_id]) == 0
    done = local_stack.wait(job_id, timeout=90)
    assert done["status"] == "completed"
    assert done["progress"] == {"total": 200, "processed": 200, "succeeded": 200, "failed": 0}
    indexes = [r["index"] for r in local_stack.results(job_id)]
    assert sorted(indexes) == list(range(200))
    record("e2e: pause against running batches, resume", cases=200, lost=0, doubled=0, stuck=0)


def test_pause_when_only_the_last_batch_is_in_flight_ends_the_job(local_stack, slow):
    job_id = submit(local_stack, visits_of(slow.base, "pause-last", 10))  # one batch
    wait_for(lambda: len([p for _, p in slow.downloads if "/pause-last/" in p]) >= 1, timeout=30, interval=0.02)
    response = local_stack.post(f"/api/jobs/pause?jobid={job_id}", None)
    assert response.status_code in (200, 409)  # 409: the batch was faster than us
    after = settle(local_stack, job_id)
    # Paused with nothing left (every image was in flight): it ends all the same. Images the event
    # source had not handed over yet are parked, and come back on resume.
    if after["status"] == "paused":
        assert after["progress"]["processed"] < 10
        assert local_stack.post(f"/api/jobs/resume?jobid={job_id}", None).status_code == 200
        after = local_stack.wait(job_id, timeout=30)
    assert after["status"] == "completed" and after["progress"]["processed"] == 10
    record("e2e: pause racing the last batch", cases=1, stuck=0)


def test_a_filtered_retry_against_a_running_retry(local_stack, image_server):
    ok = image_server.add("/e2e-control/retry-ok.jpg", open_image())
    gone = image_server.url("/e2e-control/retry-gone.jpg")
    busy = image_server.add("/e2e-control/retry-busy.jpg", b"busy", "text/plain", status=503)
    visits = [
        {"store_id": "RP00006", "image_url": [ok, gone, busy], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "NOPE", "image_url": [ok], "visit_time": "2024-03-15T10:00:00Z"},
    ]
    job_id = submit(local_stack, visits)
    assert local_stack.wait(job_id, timeout=60)["status"] == "failed"
    classes = {r["index"]: r["error_class"] for r in local_stack.results(job_id)}
    assert classes == {0: None, 1: "permanent", 2: "transient", 3: "store"}

    def retry(error_class):
        return local_stack.post(f"/api/jobs/retry?jobid={job_id}&error_class={error_class}", None)

    with ThreadPoolExecutor(2) as pool:  # two filtered retries at once: one wins
        answers = list(pool.map(retry, ["transient", "permanent"]))
    codes = sorted(a.status_code for a in answers)
    assert codes == [201, 409], [a.text for a in answers]
    accepted = next(a.json() for a in answers if a.status_code == 201)
    assert accepted["total"] == 1
    running = local_stack.post(f"/api/jobs/retry?jobid={accepted['job_id']}", None)
    assert running.status_code == 409  # still ongoing (or: nothing failed yet)
    local_stack.wait(accepted["job_id"], timeout=60)
    assert cli_main(["--base-url", local_stack.url, "retry", job_id, "--error-class", "store"]) == 2  # retried
    record("e2e: two filtered retries at once", cases=2, doubled=0)


def open_image() -> bytes:
    from harness import make_image

    return make_image("JPEG", 12, 8)


def test_the_results_feed_follower_gets_every_image_once_while_the_job_runs(local_stack):
    from devkit.images import UniformImageHost

    host = UniformImageHost(32, 16)
    try:
        job_id = submit(local_stack, host.visits(1500, per_visit=50, store="RP00007"))
        got: list[dict] = []
        lags: list[float] = []
        since, done, polls = None, False, 0
        deadline = time.monotonic() + 180
        while not done and time.monotonic() < deadline:
            params = {"jobid": job_id, "order": "processed", "limit": 1000} | ({"since": since} if since else {})
            page = local_stack.get("/api/results", **params).json()
            now = time.time()
            for r in page["results"]:
                ended = datetime.fromisoformat(r["processed_at"].replace("Z", "+00:00")).timestamp()
                lags.append(now - ended)
            got += page["results"]
            since, done = page["next_since"], page["done"]
            polls += 1
            if len(page["results"]) < 1000:
                time.sleep(0.2)
        indexes = [r["index"] for r in got]
        assert done and len(indexes) == 1500 and sorted(indexes) == list(range(1500))
        assert polls > 3  # it followed the job while it ran
        assert statistics.median(lags) < 15
    finally:
        host.close()
    record("e2e: results feed followed while running (concurrent batches)", cases=1500, lost=0, doubled=0)


def test_progress_events_are_signed_and_sent_once_each(local_stack, slow):
    body = {
        "count": 4,
        "visits": visits_of(slow.base, "events", 40),
        "callback_url": f"{slow.base}/hooks/events",
        "labels": {"suite": "e2e-events"},
    }
    body["count"] = len(body["visits"])
    response = local_stack.post("/api/submit", body)
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    local_stack.wait(job_id, timeout=60)
    wait_for(lambda: any(json.loads(b)["event"] == "job.ended" for _, b in slow.callbacks), timeout=20)
    time.sleep(2)
    events = [(h, json.loads(b), b) for h, b in slow.callbacks if json.loads(b)["job_id"] == job_id]
    names = sorted((e["event"], e.get("percent")) for _, e, _ in events)
    assert names.count(("job.ended", None)) == 1
    progress = sorted(p for name, p in names if name == "job.progress")
    assert progress == sorted(set(progress)) and set(progress) <= {25, 50, 75}  # at most once each
    key = local_stack.get("/api/callbacks/key").json()["signing_key"]
    for headers, event, raw in events:
        expected = "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-Retail-Pulse-Signature"] == expected
        assert headers["X-Retail-Pulse-Event"] == event["event"]
        assert event["labels"] == {"suite": "e2e-events"}
    ended = next(e for _, e, _ in events if e["event"] == "job.ended")
    assert ended["cost"]["gb_s"] > 0 and ended["throughput"]["overall_per_min"] > 0
    on_topic = [m["event"] for m in topic_messages(local_stack) if m["job_id"] == job_id]
    assert on_topic.count("job.ended") == 1 and len(on_topic) == len(events)


@pytest.fixture(scope="module")
def stalling_stack(tmp_path_factory):
    """A stack whose every batch outlives process_image's 60 s Timeout (processing takes 70 s): the
    worker is killed, the message hides for the queue's 360 s, and the job makes no progress. The
    stall sweeper runs every 2 s (`--schedule-period`); the notice comes after 60 s without progress
    (STALL_NOTICE_AFTER_S, its least)."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("stalling-stack"),
        "--warm",
        "1",
        "--schedule-period",
        "2",
        "--callback-signing-secret",
        CALLBACK_SIGNING_SECRET,
        "--env",
        "PROCESSING_DELAY_MIN_S=70",
        "PROCESSING_DELAY_MAX_S=70",
        "STALL_NOTICE_AFTER_S=60",
    )
    yield stack
    stack.stop()


def test_a_job_without_progress_gets_one_signed_stalled_event(stalling_stack, slow):
    body = {"count": 1, "visits": visits_of(slow.base, "stall", 2), "callback_url": f"{slow.base}/hooks/stall"}
    response = stalling_stack.post("/api/submit", body)
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    submitted = time.monotonic()

    def stalled() -> list:
        return [(h, b) for h, b in slow.callbacks if json.loads(b)["event"] == "job.stalled"]

    wait_for(stalled, timeout=150)
    assert time.monotonic() - submitted >= 60  # not before the setting's time without progress
    time.sleep(6)  # three more sweeps: still one event
    [(headers, raw)] = stalled()
    event = json.loads(raw)
    assert event["job_id"] == job_id and event["status"] == "ongoing", event
    key = stalling_stack.get("/api/callbacks/key").json()["signing_key"]
    expected = "sha256=" + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Retail-Pulse-Signature"] == expected and headers["X-Retail-Pulse-Event"] == "job.stalled"
    on_topic = [m["event"] for m in topic_messages(stalling_stack) if m["job_id"] == job_id]
    assert on_topic == ["job.stalled"]
    job = status(stalling_stack, job_id)
    assert job["status"] == "ongoing" and job["progress"]["processed"] == 0, job  # a notice, not a verdict


def test_labels_list_and_the_cli_follows_the_feed(local_stack, image_server, capsys, tmp_path):
    url = image_server.add("/e2e-control/label.jpg", open_image())
    job = {
        "count": 1,
        "visits": [{"store_id": "RP00009", "image_url": [url] * 3, "visit_time": "2024-03-15T10:00:00Z"}],
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    base = ["--base-url", local_stack.url]
    assert cli_main([*base, "submit", str(path), "--label", "suite=e2e-labels", "--wait"]) == 0
    out = capsys.readouterr().out
    job_id = out.split()[1].rstrip(":")
    assert "labels suite=e2e-labels" in out and "cost" in out
    assert cli_main([*base, "list", "--label", "suite:e2e-labels"]) == 0
    assert capsys.readouterr().out.split()[0] == job_id
    assert cli_main([*base, "results", job_id, "--follow"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["index"] for r in lines) == [0, 1, 2]
    assert local_stack.get("/api/jobs", label="nocolon").status_code == 400


def test_concurrent_pause_resume_cancel_keep_counts_exact(local_stack, slower):
    slow = slower
    job_id = submit(local_stack, visits_of(slow.base, "race", 200))
    wait_for(lambda: status(local_stack, job_id)["progress"]["processed"] >= 10, timeout=60, interval=0.05)
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            local_stack.post(f"/api/jobs/pause?jobid={job_id}", None)
            local_stack.post(f"/api/jobs/resume?jobid={job_id}", None)

    flipper = threading.Thread(target=flip)
    flipper.start()
    time.sleep(2)
    cancel = local_stack.post(f"/api/jobs/cancel?jobid={job_id}", None)
    stop.set()
    flipper.join()
    final = settle(local_stack, job_id)
    p = final["progress"]
    assert final["status"] in ("cancelled", "completed")
    assert p["processed"] == p["total"] == 200
    # Results of batches still in flight at the cancel are deleted by the stream consumer when they
    # arrive (never counted): the results and the counts agree once they have.
    wait_for(lambda: len(local_stack.results(job_id)) == p["succeeded"] + p["failed"], timeout=30, interval=0.5)
    if cancel.status_code == 200:
        assert final["status"] == "cancelled" and p == cancel.json()["progress"]
    record("e2e: pause/resume/cancel racing running batches", cases=200, lost=0, doubled=0, stuck=0)


def test_the_cli_submits_a_failure_threshold_and_retries_by_store_and_index(
    local_stack, image_server, slower, capsys, tmp_path
):
    missing = image_server.url("/e2e-control/cli-threshold-missing.jpg")
    # A quick 404 first, then ten batches of slow images: the failure is counted while most of the
    # job is still queued, so the threshold (no failure tolerated) ends it early.
    first = {"store_id": "RP00008", "image_url": [missing], "visit_time": "2024-03-15T10:00:00Z"}
    visits = [first, *visits_of(slower.base, "cli-threshold", 100, store="RP00008")]
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"count": len(visits), "visits": visits}))
    base = ["--base-url", local_stack.url]
    command = [*base, "submit", str(path), "--tolerated-failure-count", "0", "--max-concurrency", "20"]
    assert cli_main([*command, "--wait", "--interval", "0.2"]) == 1
    out = capsys.readouterr().out
    job_id = out.split()[1].rstrip(":")
    assert "failure threshold count 0" in out and "reason: failure threshold exceeded" in out, out
    assert "max concurrency 20 images" in out, out
    final = settle(local_stack, job_id)
    assert final["failure_threshold"]["tolerated_failure_count"] == 0 and final["progress"]["skipped"] > 0
    assert final["max_concurrency"] == 20
    assert cli_main([*base, "retry", job_id, "--store", "RP00009", "--index", "0"]) == 2  # matches nothing: 409
    assert "matches the filter" in capsys.readouterr().err
    assert cli_main([*base, "retry", job_id, "--store", "RP00008", "--index", "0"]) == 0
    retry_id = capsys.readouterr().out.strip()
    retried = local_stack.wait(retry_id, timeout=60)
    assert retried["progress"]["total"] == 1 and retried["retry_of"] == job_id
    assert [r["image_url"] for r in local_stack.results(retry_id)] == [missing]
