"""Local stacks over HTTP: this checkout's (AWS limits model on by default) and the baseline
commit's (a git worktree, its own `python -m local_stack`), jobs timed until they complete, and
pollers following a job from a process of their own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchkit import ROOT
from benchkit.scaffolding import ImageHost, log
from local_stack.runner import RunningStack, free_port, start_local_stack

BASELINE_COMMIT = "f399a74"  # the code before the write path at AWS scale (no limits model in its stack)
STARTUP_TIMEOUT_S = 600.0  # 20 warm workers per function: 3-4 min measured at load average 60-80 on 2 cores
POLLERS = Path(__file__).with_name("pollers.py")


# -- local stacks ----------------------------------------------------------------------------------
def start_stack(log_dir: Path, *args: str) -> RunningStack:
    """This checkout's local stack (AWS limits model on unless `args` say --no-aws-limits)."""
    started = time.perf_counter()
    stack = start_local_stack(log_dir, *args, startup_timeout=STARTUP_TIMEOUT_S)
    log(f"local stack {' '.join(args)} ready in {time.perf_counter() - started:.0f} s")
    return stack


def start_stack_at(checkout: Path, log_dir: Path, *args: str) -> RunningStack:
    """The local stack of another checkout (its own `python -m local_stack`, this interpreter), driven
    over HTTP with this checkout's client."""
    port = free_port()
    output = Path(log_dir) / f"baseline-stack-{port}.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack", "--port", str(port), *args],
        cwd=checkout,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    stack = RunningStack(f"http://127.0.0.1:{port}", process, output)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"baseline local stack exited: {output.read_text()[-2000:]}")
        if "Local stack ready" in output.read_text():
            log(f"baseline local stack {' '.join(args)} ready in {time.perf_counter() - started:.0f} s")
            return stack
        time.sleep(0.2)
    stack.stop()
    raise RuntimeError(f"baseline local stack did not start: {output.read_text()[-2000:]}")


class BaselineCheckout:
    """`git worktree add --detach <tmp> <commit>` for the time of a `with` block (removed after).
    `path` is None and `reason` says why when it cannot be made (no git, not a repository, ...)."""

    def __init__(self, commit: str = BASELINE_COMMIT) -> None:
        self.commit = commit
        self.path: Path | None = None
        self.reason = ""

    def __enter__(self) -> BaselineCheckout:
        git = shutil.which("git")
        if git is None:
            self.reason = "git not found"
            return self
        target = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
        done = subprocess.run(
            [git, "-C", str(ROOT), "worktree", "add", "--detach", str(target), self.commit],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            self.reason = f"git worktree add {self.commit} failed: {(done.stderr or done.stdout).strip()[-200:]}"
        else:
            self.path = target
            log(f"baseline {self.commit} checked out in {target}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is None:
            return
        git = shutil.which("git") or "git"
        removed = subprocess.run(
            [git, "-C", str(ROOT), "worktree", "remove", "--force", str(self.path)], capture_output=True, check=False
        )
        if removed.returncode != 0:
            shutil.rmtree(self.path, ignore_errors=True)
            subprocess.run([git, "-C", str(ROOT), "worktree", "prune"], capture_output=True, check=False)


# -- jobs over HTTP --------------------------------------------------------------------------------
@dataclass
class JobRun:
    images: int
    seconds: float
    label: str = ""
    polls: dict = field(default_factory=dict)
    status_failures: int = 0  # the benchmark's own status requests that were not answered 200

    @property
    def throughput(self) -> float:
        return self.images / self.seconds


class Pollers:
    """`count` clients following one job (benchkit/pollers.py in a process of its own)."""

    def __init__(self, url: str, count: int, interval: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(POLLERS), url, "--threads", str(count), "--interval", str(interval)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def follow(self, job_id: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(job_id + "\n")
        self.process.stdin.flush()

    def stop(self) -> dict:
        out, _ = self.process.communicate(timeout=120)
        return json.loads(out.strip().splitlines()[-1]) if out.strip() else {}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_until_ended(stack: RunningStack, job_id: str, timeout: float, interval: float) -> tuple[dict, int]:
    """The job's status once it is no longer ongoing, and how many status requests failed meanwhile
    (an answer other than 200, or none: counted and asked again, as a client would)."""
    deadline = time.monotonic() + timeout
    failed = 0
    while time.monotonic() < deadline:
        try:
            response = stack.get("/api/status", jobid=job_id)
        except requests.RequestException:
            response = None
        if response is None or response.status_code != 200:
            failed += 1
        elif response.json()["status"] != "ongoing":
            return response.json(), failed
        time.sleep(interval)
    raise AssertionError(f"job {job_id} still ongoing after {timeout} s")


def run_job(
    stack: RunningStack, host: ImageHost, images: int, *, store: str, pollers: int = 0, label: str = ""
) -> JobRun:
    """Submit an `images`-image job and time it until its status is no longer ongoing (it must have
    completed), with `pollers` clients asking for its status and results every 0.1 s meanwhile."""
    visits = host.visits(images, store=store)
    polling = Pollers(stack.url, pollers, 0.1) if pollers else None
    try:
        started = time.perf_counter()
        job_id = stack.submit(visits)
        if polling:
            polling.follow(job_id)
        job, failed = wait_until_ended(stack, job_id, timeout=900, interval=0.1)
        elapsed = time.perf_counter() - started
        polls = polling.stop() if polling else {}
    finally:
        if polling:
            polling.kill()
    assert job["status"] == "completed", job
    run = JobRun(images, elapsed, label, polls, failed)
    failures = f", {failed} status requests of the benchmark failed" if failed else ""
    log(
        f"{label or 'job'}: {images:,} images in {elapsed:.1f} s ({run.throughput:.0f} images/s{failures})"
        + (f" polls {polls}" if polls else "")
    )
    return run
