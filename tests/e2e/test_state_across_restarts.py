"""The local stack keeps its AWS side across restarts (`--state-dir`): an accepted job answers the
same after a clean stop (SIGTERM) and a restart, a message in flight at the stop is processed after
it, a crash (SIGKILL) loses at most the last save interval, `--fresh` starts empty, and two stacks
cannot share one state directory."""

from __future__ import annotations

import time

import boto3
import pytest
from harness import make_image
from reliability import record

from local_stack.runner import start_local_stack

FAST = ("--env", "PROCESSING_DELAY_MIN_S=0", "PROCESSING_DELAY_MAX_S=0.02", "DOWNLOAD_READ_TIMEOUT_S=10")
INTERVAL_S = 1.0


def state_line(stack) -> str:
    return next(line for line in stack.log.read_text().splitlines() if line.startswith("State"))


def subscriptions(stack, topic_suffix: str) -> list[dict]:
    sns = boto3.client(
        "sns",
        endpoint_url=stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
    )
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(topic_suffix))
    return sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]


def test_jobs_queues_and_notices_survive_a_restart_and_fresh_starts_empty(tmp_path, image_server):
    state = tmp_path / "state"
    image_server.slow_seconds = 3.0
    fast_url = image_server.add("/state/a.png", make_image("PNG", 10, 20), "image/png")
    slow_url = image_server.add("/slow/state/b.png", make_image("PNG", 30, 40), "image/png")
    visit = {"store_id": "RP00001", "visit_time": "2024-03-15T10:00:00Z"}

    def start(*extra: str):
        args = ("--state-dir", str(state), "--state-interval", str(INTERVAL_S), "--warm", "1", *FAST, *extra)
        return start_local_stack(tmp_path, *args)

    # 1. A job that ends, and one whose image is still downloading when the stack stops.
    first = start()
    try:
        assert "fresh (nothing saved yet)" in state_line(first)
        done = first.submit([{**visit, "image_url": [fast_url, fast_url]}])
        status_before = first.wait(done)
        results_before = first.results(done)
        notices_before = first.get("/_local/topics/JobEventsTopic").json()
        in_flight = first.submit([{**visit, "image_url": [slow_url]}])
        requests_before = len(image_server.requests)
        deadline = time.monotonic() + 30
        while len(image_server.requests) == requests_before:  # its message was received: in flight
            assert time.monotonic() < deadline, "the slow image was never requested"
            time.sleep(0.05)
    finally:
        first.stop()  # SIGTERM: the clean shutdown saves

    # 2. Restarted on the same directory: everything answers as before; the in-flight image ends.
    second = start()
    try:
        assert "restored" in state_line(second), state_line(second)
        assert second.get("/api/status", jobid=done).json() == status_before
        assert second.results(done) == results_before
        assert second.get("/_local/topics/JobEventsTopic").json()[: len(notices_before)] == notices_before
        ended = second.wait(in_flight, timeout=60)
        assert ended["status"] == "completed" and ended["progress"]["processed"] == 1
        assert [r["perimeter"] for r in second.results(in_flight)] == [2 * (30 + 40)]
        # The previous run's inbox subscription was replaced, not kept next to the new one.
        assert len([s for s in subscriptions(second, "JobEventsTopic") if s["Protocol"] == "http"]) == 1
        # 3. A crash after a periodic save keeps what that save held.
        crashed_job = second.submit([{**visit, "image_url": [fast_url]}])
        second.wait(crashed_job)
        time.sleep(INTERVAL_S * 3)
    finally:
        second.crash()

    third = start()
    try:
        assert "restored" in state_line(third)
        assert third.get("/api/status", jobid=crashed_job).json()["status"] == "completed"
        # Two stacks on one directory would overwrite each other's state: the second is refused.
        with pytest.raises(RuntimeError, match="in use by another local stack"):
            start()
    finally:
        third.stop()

    # 4. --fresh: the saved state is discarded.
    fresh = start("--fresh")
    try:
        assert "fresh (--fresh" in state_line(fresh)
        response = fresh.get("/api/status", jobid=done)
        assert response.status_code == 400 and "no job" in response.json()["error"]
    finally:
        fresh.stop()
    record("Local stack restarted (clean stop, crash after a save): jobs, results, queued messages kept", 3)
