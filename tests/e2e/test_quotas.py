"""Quotas hold under load, through the local stack with two keys: client A's jobs never have more
images downloading at once than its quota (CLIENT_IMAGE_QUOTA), a job with `max_concurrency` never
more than that, while process_image has room for six batches (60 images); client B's small job is
done while A's are still running; every image is measured once and every count is exact. The image
host counts the requests in flight under each folder (devkit.images.ImageServer.peaks). The keyed
stack (tests/e2e/conftest.py) runs six process_image batches at once and sets the quota."""

from __future__ import annotations

import time

import pytest
import requests
from harness import make_image
from reliability import record

from devkit.images import ImageServer

from .conftest import API_KEY as KEY_A
from .conftest import CLIENT_QUOTA as QUOTA
from .conftest import SECOND_API_KEY as KEY_B

JOB_CAP = 2
T = "2024-03-15T10:00:00Z"


@pytest.fixture(scope="module")
def slow_host():
    server = ImageServer()
    server.slow_seconds = 0.25  # each download takes a while: batches overlap
    yield server
    server.close()


def submit(stack, key: str, urls: list[str], **controls) -> str:
    body = {"count": 1, "visits": [{"store_id": "RP00001", "image_url": urls, "visit_time": T}], **controls}
    response = requests.post(f"{stack.url}/api/submit", json=body, headers={"x-api-key": key}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def status(stack, key: str, job_id: str) -> dict:
    response = requests.get(f"{stack.url}/api/status", params={"jobid": job_id}, headers={"x-api-key": key}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def test_quotas_hold_under_load_and_another_client_keeps_moving(keyed_stack, slow_host):
    body = make_image("JPEG", 30, 20)

    def urls(folder: str, n: int) -> list[str]:
        return [slow_host.add(f"/slow/{folder}/{i}.jpg", body) for i in range(n)]

    big = [submit(keyed_stack, KEY_A, urls(f"a/job{n}", 40)) for n in range(3)]
    capped = submit(keyed_stack, KEY_A, urls("a/capped", 12), max_concurrency=JOB_CAP)
    time.sleep(1.0)  # A's backlog is queued and running
    small = submit(keyed_stack, KEY_B, urls("b/small", 10))
    submitted = time.monotonic()
    small_done = None
    deadline = submitted + 240
    jobs = [(KEY_A, j) for j in [*big, capped]] + [(KEY_B, small)]
    while time.monotonic() < deadline:
        states = {job_id: status(keyed_stack, key, job_id) for key, job_id in jobs}
        if small_done is None and states[small]["status"] != "ongoing":
            small_done = time.monotonic() - submitted
            a_still_running = any(states[j]["status"] == "ongoing" for j in big)
        if all(s["status"] != "ongoing" for s in states.values()):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("jobs still ongoing")
    for _, job_id in jobs:
        progress = states[job_id]["progress"]
        assert (states[job_id]["status"], progress["failed"]) == ("completed", 0), states[job_id]
        assert progress["succeeded"] == progress["total"]
    paths = [p for p in slow_host.requests if p.startswith("/slow/")]
    assert len(paths) == len(set(paths)) == 3 * 40 + 12 + 10  # each image downloaded once
    peaks = slow_host.peaks
    assert peaks["/slow/a"] <= QUOTA, peaks
    assert peaks["/slow/a/capped"] <= JOB_CAP, peaks
    assert peaks["/slow/a"] >= QUOTA // 2, peaks  # A was busy: the cap was reached, not load missing
    assert small_done is not None and a_still_running, "B's job should end while A's are running"
    record("quota (local stack, 2 keys): client quota and job max_concurrency hold under load", len(paths))
