"""Jobs of any size, measured on the local stack (a subprocess, driven over HTTP as a client would):

1. A 1,000,000-image manifest job, twice: with processing paused (ImageProcessingEnabled=false: the
   fan-out has the machine to itself, as an invocation has its own CPU on AWS), then with processing
   running on the same two cores: submit latency, the fan-out's enqueue rate, status latency while
   it runs (the job is cancelled once measured).
2. Export of a 50,000-result job: time until ready; the exporting code's peak RSS for a 5,000- and a
   50,000-result job (each in a fresh process, against the same local AWS endpoint).
3. A 5,000-image job with the real 0.1-0.4 s delay, end to end: inline, then as a manifest.

Writes the section "## Manifests and exports" of BENCHMARKS.md (the rest of the file is kept).

    .venv/bin/python benchmarks/manifest.py            # everything (~40 min on 2 cores)
    .venv/bin/python benchmarks/manifest.py --quick    # smaller jobs, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

import requests  # noqa: E402

from devkit.images import UniformImageHost  # noqa: E402
from local_stack.runner import RunningStack, start_local_stack  # noqa: E402

SECTION = "## Manifests and exports"
EXPECTED_MAX_OF_TEN_SLEEPS = 0.1 + 0.3 * 10 / 11
STARTUP_S = 600  # warm workers of every function: slow to start on a busy shared machine


@dataclass
class Row:
    metric: str
    measured: float
    target: float
    unit: str
    lower_is_better: bool = True
    note: str = ""

    @property
    def met(self) -> bool:
        return self.measured <= self.target if self.lower_is_better else self.measured >= self.target

    def line(self) -> str:
        sign = "<=" if self.lower_is_better else ">="
        return (
            f"| {self.metric} | {self.measured:,.3f} {self.unit} | {sign} {self.target:g} | "
            f"{'yes' if self.met else 'NO'} | {self.note} |"
        )


def write_csv(path: Path, host: UniformImageHost, images: int, store: str = "RP00001") -> int:
    """A CSV manifest of `images` rows (10 per visit), written in blocks; its size in bytes."""
    with path.open("w") as f:
        f.write("store_id,image_url,visit_time\n")
        block = []
        for i in range(images):
            block.append(f"{store},{host.base}/i/{i}.jpg,2024-03-15T10:{i // 10 % 60:02d}:00Z\n")
            if len(block) == 10_000:
                f.write("".join(block))
                block = []
        f.write("".join(block))
    return path.stat().st_size


def upload(stack: RunningStack, path: Path) -> tuple[str, float]:
    """POST /api/uploads, PUT the file to the presigned URL (streamed); (upload_id, seconds)."""
    started = time.perf_counter()
    created = stack.post("/api/uploads", {"size": path.stat().st_size})
    assert created.status_code == 201, created.text
    with path.open("rb") as f:
        stored = requests.put(created.json()["upload_url"], data=f, timeout=600)
    assert stored.status_code == 200, stored.text
    return created.json()["upload_id"], time.perf_counter() - started


def submit_manifest(stack: RunningStack, upload_id: str) -> tuple[str, float]:
    started = time.perf_counter()
    response = stack.post("/api/submit", {"manifest": upload_id})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    return response.json()["job_id"], elapsed


def wait(stack: RunningStack, job_id: str, timeout: float, interval: float = 0.1) -> dict:
    return stack.wait(job_id, timeout=timeout, interval=interval)


# -- 1. a 1,000,000-image manifest ----------------------------------------------------------------------
def million(
    host: UniformImageHost, log_dir: Path, images: int, window_s: float = 1800, *, processing: bool = True
) -> tuple[list[Row], list[str]]:
    """`window_s`: how long the enqueuing phase is watched at most; a fan-out still enqueuing then has
    its rate measured over what was observed (said in the notes), and the job is cancelled.
    `processing` False: the stack runs with ImageProcessingEnabled=false (the image queue's event
    source mapping disabled), so the fan-out has the machine to itself, as each Lambda invocation has
    its own CPU on AWS; True: process_image takes the images as they come, on the same two cores."""
    path = log_dir / "million.csv"
    size = write_csv(path, host, images)
    overrides = () if processing else ("--parameter-overrides", "ImageProcessingEnabled=false")
    stack = start_local_stack(log_dir, "--warm", "4", *overrides, startup_timeout=STARTUP_S)
    notes = [] if processing else ["processing paused: ImageProcessingEnabled=false"]
    where = "processing running" if processing else "processing paused"
    try:
        upload_id, upload_s = upload(stack, path)
        notes.append(
            f"manifest: {images:,} rows, {size / 1e6:.1f} MB CSV, uploaded in {upload_s:.1f} s (presigned PUT)"
        )
        job_id, submit_s = submit_manifest(stack, upload_id)
        timeline: list[tuple[float, str, int]] = []  # (time, phase, enqueued)
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + 3600
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            body = stack.get("/api/status", jobid=job_id).json()
            latencies.append(time.perf_counter() - t0)
            phase = body.get("phase") if body["status"] == "ongoing" else body["status"]
            timeline.append((time.perf_counter() - started, phase, body.get("enqueued", 0)))
            if phase not in ("accepted", "enqueuing"):
                break
            if phase == "enqueuing":
                deadline = min(deadline, time.perf_counter() + window_s)
            time.sleep(0.2)
        checked_at = next((t for t, phase, _ in timeline if phase != "accepted"), timeline[-1][0])
        enqueuing = [(t, n) for t, phase, n in timeline if phase == "enqueuing"]
        first = enqueuing[0] if enqueuing else (checked_at, 0)
        finished = timeline[-1][1] not in ("accepted", "enqueuing")
        # Finished: images enqueued from the first observation of the enqueuing phase up to `ongoing` (all).
        last = (timeline[-1][0], images) if finished else (enqueuing[-1] if enqueuing else first)
        enqueue_s = last[0] - first[0]
        enqueue_rate = (last[1] - first[1]) / enqueue_s if enqueue_s > 0 else float("nan")
        checked = "checked" if enqueuing or finished else "NOT all checked"
        notes.append(
            f"fan-out: rows {checked} in {checked_at:.1f} s ({images / checked_at:,.0f} rows/s); "
            + (
                f"then enqueued in {enqueue_s:.1f} s; {last[0]:.1f} s from submit to `ongoing`"
                if finished
                else f"enqueuing NOT finished: {last[1]:,} of {images:,} enqueued after {last[0]:.1f} s "
                f"(rate over the last {enqueue_s:.0f} s observed)"
            )
            + f"; {len(latencies)} status calls meanwhile (p90 "
            f"{statistics.quantiles(latencies, n=10)[-1] * 1000:.0f} ms)"
        )
        cancelled = stack.post(f"/api/jobs/cancel?jobid={job_id}", None)
        notes.append(f"then cancelled ({cancelled.status_code}): {cancelled.json().get('progress')}")
    finally:
        stack.stop()
        path.unlink(missing_ok=True)
    rows = [
        Row(f"{images:,}-image manifest ({where}): submit answered in", submit_s, 1.0, "s"),
        Row(
            f"{images:,}-image manifest: fan-out enqueue rate (local stack, {where})",
            enqueue_rate,
            5000,
            "images/s",
            lower_is_better=False,
            note=f"over {enqueue_s:.1f} s of the enqueuing phase" + ("" if finished else " (not finished)"),
        ),
        Row(
            f"status while the fan-out runs ({where}), median of {len(latencies)}",
            statistics.median(latencies) * 1000,
            50,
            "ms",
        ),
    ]
    return rows, notes


# -- 2. exports ------------------------------------------------------------------------------------------
MEASURE_EXPORT = r"""
import json, os, resource, sys, time
sys.path[:0] = [os.environ["_CODE"], os.environ["_LAYER"]]
from retail_pulse import handler_kit as kit
from retail_pulse.logic.exports import run_export
export_id = sys.argv[1]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kit.jobs(); kit.files()  # the clients, as a warm container has them
warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
done = run_export(export_id, jobs=kit.jobs(), exports=kit.jobs(), files=kit.files())
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rows": done.rows, "seconds": elapsed, "rss_start_kb": warm, "rss_peak_kb": peak, "base_kb": base}))
"""


def export_state(stack: RunningStack, job_id: str, fmt: str = "jsonl", timeout: float = 300) -> tuple[dict, float]:
    started = time.perf_counter()
    response = stack.post(f"/api/results/export?jobid={job_id}&format={fmt}", None)
    assert response.status_code == 202, response.text
    export_id = response.json()["export_id"]
    while True:
        state = stack.get("/api/results/export", export_id=export_id).json()
        if state["state"] != "running":
            return state, time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"export not ready after {timeout} s: {state}")
        time.sleep(0.1)


def measured_export(stack: RunningStack, env: dict, job_id: str) -> dict:
    """run_export in a fresh process (the export function's environment), on an export item made for
    it directly (no queue message: the stack's own worker must not take it)."""
    import boto3

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local stack's made-up credentials
    )
    export_id = f"bench{int(time.time() * 1000)}"
    ddb.put_item(
        TableName=env["JOBS_TABLE_NAME"],
        Item={
            "pk": {"S": f"EXPORT#{export_id}"},
            "sk": {"S": "EXPORT"},
            "export_id": {"S": export_id},
            "job_id": {"S": job_id},
            "format": {"S": "csv"},
            "state": {"S": "running"},
            "rows": {"N": "0"},
            "key": {"S": f"exports/{export_id}.csv"},
            "created_at": {"S": datetime.now(UTC).isoformat()},
        },
    )
    code = str(ROOT / "functions" / "export_results")
    run = subprocess.run(
        [sys.executable, "-c", MEASURE_EXPORT, export_id],
        env={**os.environ, **env, "_CODE": code, "_LAYER": str(ROOT / "layers" / "common")},
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def exports(host: UniformImageHost, log_dir: Path, big: int, small: int) -> tuple[list[Row], list[str]]:
    env_file = log_dir / "functions-env.json"
    stack = start_local_stack(
        log_dir,
        "--warm",
        "4",
        "--write-env",
        str(env_file),
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0",
        startup_timeout=STARTUP_S,
    )
    notes, rows = [], []
    try:
        jobs = {}
        for n, store in ((small, "RP00002"), (big, "RP00003")):
            path = log_dir / f"export-{n}.csv"
            write_csv(path, host, n, store)
            upload_id, _ = upload(stack, path)
            job_id, _ = submit_manifest(stack, upload_id)
            started = time.perf_counter()
            final = wait(stack, job_id, timeout=3600, interval=1)
            assert final["status"] == "completed", final
            notes.append(f"{n:,}-image job (no delay) processed in {time.perf_counter() - started:.0f} s")
            jobs[n] = job_id
        state, ready_s = export_state(stack, jobs[big])
        assert state["state"] == "ready" and state["rows"] == big, state
        size = len(requests.get(state["url"], timeout=120).content)
        rows.append(
            Row(
                f"export of a {big:,}-result job: ready in",
                ready_s,
                15,
                "s",
                note=f"JSON Lines, {size / 1e6:.1f} MB, through the API and the export function",
            )
        )
        env = json.loads(env_file.read_text())["ExportResultsFunction"]
        measured = {n: measured_export(stack, env, jobs[n]) for n in (small, big)}
        for m in measured.values():
            notes.append(
                f"export of {m['rows']:,} results in a fresh process: {m['seconds']:.1f} s, peak RSS "
                f"{m['rss_peak_kb'] / 1024:.1f} MiB (after import and clients {m['rss_start_kb'] / 1024:.1f} MiB)"
            )
        growth = (measured[big]["rss_peak_kb"] - measured[small]["rss_peak_kb"]) / 1024
        rows.append(
            Row(
                f"export peak RSS, {big:,} results vs {small:,}",
                growth,
                10,
                "MiB more",
                note=f"{measured[small]['rss_peak_kb'] / 1024:.0f} -> {measured[big]['rss_peak_kb'] / 1024:.0f} MiB: "
                "flat (two bounded pages per partition, one 5 MiB part)",
            )
        )
    finally:
        stack.stop()
    return rows, notes


# -- 3. end to end, inline vs manifest --------------------------------------------------------------------
def end_to_end(host: UniformImageHost, log_dir: Path, images: int, concurrency: int) -> tuple[list[Row], list[str]]:
    stack = start_local_stack(
        log_dir, "--max-concurrency", str(concurrency), "--warm", str(concurrency), startup_timeout=STARTUP_S
    )
    path = log_dir / "e2e.csv"
    write_csv(path, host, images, "RP00005")
    try:
        started = time.perf_counter()
        job_id = stack.submit(host.visits(images, store="RP00005"))
        assert wait(stack, job_id, timeout=900)["status"] == "completed"
        inline_s = time.perf_counter() - started
        started = time.perf_counter()
        upload_id, _ = upload(stack, path)
        job_id, _ = submit_manifest(stack, upload_id)
        assert wait(stack, job_id, timeout=900)["status"] == "completed"
        manifest_s = time.perf_counter() - started
    finally:
        stack.stop()
    ideal = images / (concurrency * 10 / EXPECTED_MAX_OF_TEN_SLEEPS)
    row = Row(
        f"{images:,} images, real delay, L = {concurrency}: inline time / manifest time",
        inline_s / manifest_s,
        0.9,
        "",
        lower_is_better=False,
        note=f"inline {inline_s:.1f} s, manifest {manifest_s:.1f} s (upload, submit, fan-out, processing); "
        f"ideal {ideal:.1f} s",
    )
    return [row], []


def write_section(rows: list[Row], notes: list[str], quick: bool, output: Path) -> str:
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
    load = os.getloadavg()
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python benchmarks/manifest.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine}; "
        f"load average at the end {load[0]:.1f} (the machine is shared)"
        + (" (quick run: smaller jobs)" if quick else "")
        + ".",
        "",
        "| metric | measured | target | met | note |",
        "| --- | --- | --- | --- | --- |",
        *[r.line() for r in rows],
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    section = "\n".join(lines)
    previous = output.read_text() if output.exists() else "# Benchmarks\n"
    if SECTION in previous:
        before, rest = previous.split(SECTION, 1)
        after = rest[rest.index("\n## ") :] if "\n## " in rest else ""
        text = before + section + after.lstrip("\n")
    else:
        text = previous.rstrip("\n") + "\n\n" + section
    output.write_text(text)
    return section


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["million", "exports", "end-to-end"], action="append")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument(
        "--enqueue-window", type=float, default=1800, help="seconds the million's enqueuing is watched at most"
    )
    args = parser.parse_args()
    parts = args.only or ["million", "exports", "end-to-end"]
    host = UniformImageHost()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-manifest-"))
    rows: list[Row] = []
    notes: list[str] = []
    if "million" in parts:
        for processing in (False, True):
            r, n = million(
                host, log_dir, 50_000 if args.quick else 1_000_000, args.enqueue_window, processing=processing
            )
            rows += r
            notes += n
            print(*[x.line() for x in r], *n, sep="\n", flush=True)  # kept if a later part fails
    if "exports" in parts:
        r, n = exports(host, log_dir, 5_000 if args.quick else 50_000, 500 if args.quick else 5_000)
        rows += r
        notes += n
        print(*[x.line() for x in r], *n, sep="\n", flush=True)  # kept if a later part fails
    if "end-to-end" in parts:
        r, n = end_to_end(host, log_dir, 500 if args.quick else 5_000, 5)
        rows += r
        notes += n
        print(*[x.line() for x in r], *n, sep="\n", flush=True)  # kept if a later part fails
    section = write_section(rows, notes, args.quick, Path(args.output))
    print(section)
    threading.Thread(target=host.close, daemon=True).start()
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
