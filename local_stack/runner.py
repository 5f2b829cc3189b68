"""Starts `python -m local_stack` in a subprocess and talks to it over HTTP (for tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from devkit.template import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningStack:
    def __init__(self, url: str, process: subprocess.Popen, log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self.aws_url: str | None = None
        self.http = requests.Session()

    def get(self, path: str, **params) -> requests.Response:
        return self.http.get(self.url + path, params=params, timeout=30)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        data = body if isinstance(body, (str, bytes)) else None
        return self.http.post(self.url + path, json=None if data else body, data=data, timeout=120, **kwargs)

    def submit(self, visits: list[dict], path: str = "/api/submit") -> str:
        response = self.post(path, {"count": len(visits), "visits": visits})
        if response.status_code != 201:
            raise AssertionError(f"submit answered {response.status_code}: {response.text[:500]}")
        return response.json()["job_id"]

    def wait(self, job_id: str, timeout: float = 60, interval: float = 0.2) -> dict:
        deadline = time.monotonic() + timeout
        body: dict = {}
        while time.monotonic() < deadline:
            body = self.get("/api/status", jobid=job_id).json()
            if body["status"] != "ongoing":
                return body
            time.sleep(interval)
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

    def inject_fault(self, operation: str, code: str, count: int, matching: str | None = None) -> None:
        """The local AWS endpoint answers the next `count` calls of `operation` (whose request body
        contains `matching`, when given) with error `code`."""
        fault = {"operation": operation, "code": code, "count": count, "matching": matching}
        response = requests.post(f"{self.aws_url}/_local/faults", json=fault, timeout=5)
        response.raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.aws_url}/_local/faults", timeout=5).raise_for_status()

    def limits(self) -> dict:
        """The DynamoDB limits model's counters, consumption and hottest partitions
        (`{"enabled": false}` when the stack runs with --no-aws-limits)."""
        response = requests.get(f"{self.aws_url}/_local/limits", timeout=5)
        response.raise_for_status()
        return response.json()

    def reset_limits(self) -> None:
        """Counters, consumption, partition budgets and transaction holds back to zero."""
        requests.delete(f"{self.aws_url}/_local/limits", timeout=5).raise_for_status()

    def sqs_client(self):
        """boto3 SQS client of the local stack's queues (their URLs are in the stack's log)."""
        import boto3

        sqs_url = next(
            line.rsplit("SQS at ", 1)[1].rstrip(")")
            for line in self.log.read_text().splitlines()
            if line.startswith("AWS endpoint")
        )
        return boto3.client(
            "sqs",
            endpoint_url=sqs_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
        )

    def crash(self) -> None:
        """Ends the stack as a crash would (SIGKILL): no final save."""
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        workers = descendants(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            # Not stopped in time (a busy machine): its function workers would be left running.
            self.process.kill()
            self.process.wait(timeout=15)
            kill_all(workers)


def start_local_stack(
    log_dir: Path, *args: str, env: dict | None = None, startup_timeout: float | None = None, port: int | None = None
) -> RunningStack:
    """Tests and benchmarks start from nothing and keep nothing (`--no-state`), never touching the
    developer's `.local/state/`, unless `args` name a `--state-dir` of their own.
    `startup_timeout`: seconds it may take to be ready (default LOCAL_STACK_STARTUP_S or 90; a busy
    machine starts the warm workers of every function slowly)."""
    if startup_timeout is None:
        startup_timeout = float(os.environ.get("LOCAL_STACK_STARTUP_S", "90"))
    port = port or free_port()
    log = Path(log_dir) / f"local-stack-{port}.log"
    if "--state-dir" not in args and "--no-state" not in args:
        args = ("--no-state", *args)
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    stack = RunningStack(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited: {log.read_text()}")
        text = log.read_text()
        if "Local stack ready" in text:
            stack.aws_url = next(line.split()[2] for line in text.splitlines() if line.startswith("AWS endpoint"))
            return stack
        time.sleep(0.2)
    # Its function workers, started before it was ready, would outlive it (orphans still busy).
    workers = descendants(process.pid)
    process.kill()
    process.wait(timeout=15)
    kill_all(workers)
    raise RuntimeError(f"local stack did not start in {startup_timeout:g} s: {log.read_text()}")


def descendants(pid: int) -> list[int]:
    """The processes under `pid` (children first), as `pgrep -P` lists them (Linux and macOS)."""
    pgrep = shutil.which("pgrep")
    if pgrep is None:
        return []
    found = subprocess.run([pgrep, "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    children = [int(p) for p in found.split()]
    return children + [d for child in children for d in descendants(child)]


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
