"""End-to-end fixtures: the local stack in a subprocess on a free port, driven over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningStack:
    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self.aws_url = None
        self.http = requests.Session()

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=30)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        data = body if isinstance(body, (str, bytes)) else None
        return self.http.post(self.url + path, json=None if data else body, data=data, timeout=60, **kwargs)

    def submit(self, visits: list[dict], path: str = "/api/submit") -> str:
        response = self.post(path, {"count": len(visits), "visits": visits})
        assert response.status_code == 201, response.text
        return response.json()["job_id"]

    def wait(self, job_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get("/api/status", jobid=job_id).json()
            if body["status"] != "ongoing":
                return body
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still ongoing after {timeout}s: {body}")

    def results(self, job_id: str, limit: int = 1000) -> list[dict]:
        out, token = [], None
        while True:
            params = {"jobid": job_id, "limit": limit} | ({"next_token": token} if token else {})
            page = self.get("/api/results", **params).json()
            out += page["results"]
            token = page["next_token"]
            if not token:
                return out

    def inject_fault(self, operation: str, code: str, count: int) -> None:
        response = requests.post(
            f"{self.aws_url}/_local/faults", json={"operation": operation, "code": code, "count": count}, timeout=5
        )
        assert response.status_code == 204


def start_local_stack(tmp_dir: Path, *args: str, env: dict | None = None) -> RunningStack:
    port = free_port()
    log = tmp_dir / f"local-stack-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    stack = RunningStack(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited: {log.read_text()}")
        text = log.read_text()
        if "Local stack ready" in text:
            stack.aws_url = next(line.split()[2] for line in text.splitlines() if line.startswith("AWS endpoint"))
            return stack
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"local stack did not start: {log.read_text()}")


def stop_local_stack(stack: RunningStack) -> None:
    stack.process.terminate()
    try:
        stack.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        stack.process.kill()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """Fast settings for tests: tiny processing delay, short visibility timeout for quick retries."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("local-stack"),
        "--visibility-timeout",
        "2",
        "--max-concurrency",
        "4",
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0.02",
        "DOWNLOAD_READ_TIMEOUT_S=1",
    )
    yield stack
    stop_local_stack(stack)
