"""Fair shares between clients on the local stack: client B's 50-image job while client A runs three
jobs of 50,000 images, with the real 0.1-0.4 s processing delay. Each API key is a client; the image
queue's message group is the client (SQS fair queues; the local SQS serves groups round-robin), so
B's messages are handed out between A's instead of after them; and each client has at most --quota
images in flight (CLIENT_IMAGE_QUOTA), so A's backlog cannot take every processing slot.

    .venv/bin/python benchmarks/fair_shares.py                 # prints the figures (BENCHMARKS.md by hand)
    .venv/bin/python benchmarks/fair_shares.py --images 5000 --backlog 5000   # a quick run

A's jobs go in as manifests (upload, then submit), as a client sends jobs that big; B submits inline
once A has --backlog images queued.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common"), str(ROOT)]

from devkit.images import UniformImageHost  # noqa: E402
from local_stack.runner import start_local_stack  # noqa: E402

KEY_A, KEY_B = "bench-client-a-0123456789", "bench-client-b-9876543210"
B_IMAGES = 50
TARGET_S = 10.0


def session(key: str) -> requests.Session:
    http = requests.Session()
    http.headers["x-api-key"] = key
    return http


def submit(http: requests.Session, url: str, visits: list[dict]) -> str:
    response = http.post(f"{url}/api/submit", json={"count": len(visits), "visits": visits}, timeout=300)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def submit_manifest(http: requests.Session, url: str, visits: list[dict]) -> str:
    """A big job as a client sends it: a CSV manifest uploaded to its presigned URL, then submitted."""
    rows = ["store_id,image_url,visit_time"]
    rows += [f"{v['store_id']},{u},{v['visit_time']}" for v in visits for u in v["image_url"]]
    upload = http.post(f"{url}/api/uploads", json={}, timeout=60).json()
    put = requests.put(upload["upload_url"], data="\n".join(rows).encode(), timeout=300)
    assert put.status_code == 200, put.text
    response = http.post(f"{url}/api/submit", json={"manifest": upload["upload_id"]}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["job_id"]


def progress(http: requests.Session, url: str, job_ids: list[str]) -> tuple[int, int]:
    """(images enqueued, images processed) of these jobs."""
    enqueued = processed = 0
    for job_id in job_ids:
        body = http.get(f"{url}/api/status", params={"jobid": job_id}, timeout=30).json()
        enqueued += body.get("enqueued", body["progress"]["total"])
        processed += body["progress"]["processed"]
    return enqueued, processed


def wait(http: requests.Session, url: str, job_id: str, timeout: float) -> tuple[float, dict]:
    """Seconds from now until the job ended (polled every 0.2 s), and its status."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        body = http.get(f"{url}/api/status", params={"jobid": job_id}, timeout=30).json()
        if body["status"] not in ("ongoing", "paused"):
            return time.perf_counter() - started, body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=50_000, help="images in each of A's three jobs")
    parser.add_argument("--concurrency", type=int, default=10, help="process_image invocations at once")
    parser.add_argument("--backlog", type=int, default=20_000, help="A's images queued when B submits")
    parser.add_argument(
        "--quota", type=int, default=50, help="each client's images in flight (CLIENT_IMAGE_QUOTA; 0: none)"
    )
    args = parser.parse_args(argv)
    host = UniformImageHost()
    log_dir = Path(tempfile.mkdtemp(prefix="fair-shares-"))
    stack = start_local_stack(
        log_dir,
        "--api-key",
        KEY_A,
        "--api-key",
        KEY_B,
        "--max-concurrency",
        str(args.concurrency),
        "--warm",
        "4",
        "--integration-timeout",
        "300",
        "--env",
        f"CLIENT_IMAGE_QUOTA={args.quota}",
        startup_timeout=400,
    )
    a, b = session(KEY_A), session(KEY_B)
    try:
        wait(b, stack.url, submit(b, stack.url, host.visits(B_IMAGES, per_visit=10, store="RP00002")), 120)  # warm-up
        alone_s, _ = wait(b, stack.url, submit(b, stack.url, host.visits(B_IMAGES, per_visit=10, store="RP00002")), 120)
        a_jobs = []
        started = time.perf_counter()
        for n in range(3):
            a_jobs.append(submit_manifest(a, stack.url, host.visits(args.images, per_visit=100, store="RP00003")))
            print(f"A's job {n + 1} of {args.images:,} images accepted ({time.perf_counter() - started:.1f} s)")
        # B comes once A's backlog dwarfs it: every processing slot busy with A's batches.
        while (a_before := progress(a, stack.url, a_jobs))[0] - a_before[1] < args.backlog:
            assert time.perf_counter() - started < 900, f"A's jobs not enqueued: {a_before}"
            time.sleep(1)
        print(f"A: {a_before[0]:,} enqueued, {a_before[1]:,} processed when B submits")
        a_at = time.perf_counter()
        b_job = submit(b, stack.url, host.visits(B_IMAGES, per_visit=10, store="RP00002"))
        beside_s, status = wait(b, stack.url, b_job, 600)
        time.sleep(max(0.0, 30 - (time.perf_counter() - a_at)))  # A's rate over at least 30 s
        a_after = progress(a, stack.url, a_jobs)
        a_elapsed = time.perf_counter() - a_at
        a_rate = (a_after[1] - a_before[1]) / a_elapsed
        for job_id in a_jobs:
            a.post(f"{stack.url}/api/jobs/cancel", params={"jobid": job_id}, timeout=60)
    finally:
        stack.stop()
        host.close()
    met = "yes" if beside_s <= TARGET_S else "NO"
    print(
        f"| client B's {B_IMAGES}-image job while client A runs 3 x {args.images:,} images: finished in | "
        f"{beside_s:.1f} s | <= {TARGET_S:g} | {met} | alone: {alone_s:.1f} s; B's job {status['status']}; A processed "
        f"{a_rate:.1f} images/s over {a_elapsed:.0f} s from B's submit, "
        f"{a_before[0] - a_before[1]:,} of its images queued at B's submit; "
        f"process_image concurrency {args.concurrency} ({args.concurrency * 10} images), client quota "
        f"{args.quota or 'none'}, real 0.1-0.4 s delay |"
    )
    return 0 if met == "yes" else 1


if __name__ == "__main__":
    raise SystemExit(main())
