"""The API contract through `sam local start-api` (`make sam-local`: SAM's Lambda containers serve
the API, the local stack runs the rest). Needs a container engine and the Lambda image (.ci/run
prepares both with ../shared/tools/lambda-image.sh); skipped, with the reason, where none can run.
Slow (about two minutes: sam build, image, five warm containers), so one stack for the module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from harness import make_image

from devkit.template import ROOT
from local_stack.runner import free_port
from tools.sam_local import READY_TIMEOUT_S, engine_problem, find_sam

WORK_DIR = ROOT / ".aws-sam" / "sam-local-test"  # kept between runs: sam build's cache


class SamApi:
    def __init__(self, url: str, stack_url: str) -> None:
        self.url = url
        self.stack_url = stack_url

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=60)

    def post(self, path: str, body) -> requests.Response:
        if isinstance(body, str):
            return requests.post(self.url + path, data=body, timeout=60)
        return requests.post(self.url + path, json=body, timeout=60)

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.get("/api/status", jobid=job_id).json()
            if body["status"] != "ongoing":
                return body
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still ongoing after {timeout}s: {body}")


def _start(log: Path) -> tuple[subprocess.Popen, SamApi]:
    port, stack_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "tools.sam_local", "--port", str(port), "--stack-port", str(stack_port),
        "--work-dir", str(WORK_DIR), "--",
        "--max-concurrency", "4", "--warm", "1",
        "--env", "PROCESSING_DELAY_MIN_S=0", "PROCESSING_DELAY_MAX_S=0.02",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + READY_TIMEOUT_S + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"make sam-local exited:\n{log.read_text()[-5000:]}")
        if "SAM local ready" in log.read_text():
            return process, SamApi(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stack_port}")
        time.sleep(1)
    process.kill()
    raise RuntimeError(f"make sam-local did not start:\n{log.read_text()[-5000:]}")


@pytest.fixture(scope="module")
def sam_api(tmp_path_factory):
    problem = engine_problem()
    if problem:
        pytest.skip(f"sam local needs a container engine: {problem}")
    if not find_sam():
        pytest.skip("sam local needs SAM CLI: make .venv-sam/.installed")
    log = tmp_path_factory.mktemp("sam-local") / "sam-local.log"
    started = time.monotonic()
    process, api = _start(log)
    print(f"sam-local ready in {time.monotonic() - started:.0f} s")
    yield api
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
    if os.environ.get("SAM_LOCAL_TEST_LOG"):
        print(log.read_text())


@pytest.fixture(scope="module")
def urls(image_server):
    return {
        "jpg": image_server.add("/sam/a.jpg", make_image("JPEG", 640, 480)),
        "png": image_server.add("/sam/b.png", make_image("PNG", 300, 200), "image/png"),
        "missing": image_server.url("/sam/missing.jpg"),
    }


def test_submit_status_results_through_sam(sam_api, urls):
    visits = [
        {"store_id": "RP00001", "image_url": [urls["jpg"], urls["png"]], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "RP00002", "image_url": [urls["missing"]], "visit_time": "2024-03-15T11:00:00Z"},
    ]
    submitted = sam_api.post("/api/submit", {"count": 2, "visits": visits})
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.json()["status_url"] == f"/api/status?jobid={job_id}"
    job = sam_api.wait(job_id)
    assert job["status"] == "failed"
    assert job["progress"] == {"total": 3, "processed": 3, "succeeded": 2, "failed": 1}
    assert [e["store_id"] for e in job["error"]] == ["RP00002"]
    results = sam_api.get("/api/results", jobid=job_id, limit=2)
    assert results.status_code == 200
    page = results.json()
    assert [r["perimeter"] for r in page["results"]] == [2240, 1000] and page["next_token"]
    rest = sam_api.get("/api/results", jobid=job_id, next_token=page["next_token"]).json()
    assert [r["status"] for r in rest["results"]] == ["failed"] and rest["next_token"] is None


def test_trailing_slash_and_callbacks_signed_with_the_generated_secret(sam_api, urls):
    body = {
        "count": 1,
        "visits": [{"store_id": "RP00003", "image_url": [urls["png"]], "visit_time": "2024-03-15T10:00:00Z"}],
        # Accepted: the local stack made up a signing secret for this run (else it would be a 400).
        "callback_url": f"{sam_api.stack_url}/samples/none",
    }
    submitted = sam_api.post("/api/submit/", body)
    assert submitted.status_code == 201, submitted.text
    assert sam_api.wait(submitted.json()["job_id"])["status"] == "completed"


def test_bad_input_is_400(sam_api, urls):
    unknown = sam_api.get("/api/status", jobid="nope")
    assert unknown.status_code == 400 and "jobid" in unknown.json()["error"]
    assert sam_api.get("/api/results", jobid="nope").status_code == 400
    assert sam_api.get("/api/status").status_code == 400
    visit = {"store_id": "RP00001", "image_url": [urls["jpg"]], "visit_time": "2024-03-15T10:00:00Z"}
    mismatch = sam_api.post("/api/submit", {"count": 3, "visits": [visit]})
    assert mismatch.status_code == 400 and mismatch.json()["error"].startswith("count")
    assert sam_api.post("/api/submit", "{broken").status_code == 400
    bad_url = sam_api.post("/api/submit", {"count": 1, "visits": [{**visit, "image_url": ["ftp://x/y"]}]})
    assert bad_url.status_code == 400 and bad_url.json()["error"] == (
        "visits[0].image_url[0]: must be an absolute http(s) URL"
    )


def test_jobs_list_health_docs_and_dashboard(sam_api, urls):
    listed = sam_api.get("/api/jobs", limit=5)
    assert listed.status_code == 200 and listed.json()["jobs"], listed.text
    assert sam_api.get("/api/jobs", status="bogus").status_code == 400
    assert sam_api.get("/api/health").json() == {"status": "ok"}
    docs = sam_api.get("/api/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text.lower()
    assert sam_api.get("/api/openapi.json").json()["paths"]["/api/submit"]
    page = sam_api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
