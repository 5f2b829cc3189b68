"""Clients following a job: N threads, each asking `/api/status` and `/api/results` for the job, then
waiting `interval` seconds, until told to stop. Runs in a process of its own (the benchmark's
process serves the images; its threads should not compete with these for one interpreter lock).

    python benchmarks/benchkit/pollers.py URL --threads 50 --interval 0.1

reads the job id as the first line of stdin, polls until stdin closes, then prints a JSON summary
(requests, answers by path and status code or error, latency median and p95 in ms) on stdout.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import threading
import time

import requests

PATHS = ("/api/status", "/api/results")


def poll(url: str, job_id: str, interval: float, stop: threading.Event, out: dict) -> None:
    session = requests.Session()
    while not stop.is_set():
        for path in PATHS:
            started = time.perf_counter()
            try:
                code = session.get(url + path, params={"jobid": job_id}, timeout=30).status_code
            except requests.RequestException as exc:
                code = type(exc).__name__
            out["latencies"].append(time.perf_counter() - started)
            out["codes"][f"{path.rsplit('/', 1)[1]} {code}"] += 1
        stop.wait(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    job_id = sys.stdin.readline().strip()
    stop = threading.Event()
    out: dict = {"latencies": [], "codes": collections.Counter()}  # list.append and += under the GIL
    threads = [
        threading.Thread(target=poll, args=(args.url, job_id, args.interval, stop, out), daemon=True)
        for _ in range(args.threads)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    sys.stdin.read()  # until the benchmark closes our stdin
    stop.set()
    elapsed = time.perf_counter() - started  # the time polled (answers still in flight are waited for)
    for thread in threads:
        thread.join(timeout=35)
    latencies = sorted(out["latencies"])
    summary = {
        "threads": args.threads,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "codes": dict(out["codes"]),
        "median_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1) if latencies else None,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
