"""Manifests and exports through a started local stack, as a user would: presigned URLs used from a
client (uploads and downloads on 127.0.0.1), the fan-out in its own worker, the CLI."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import requests
from harness import ImageServer, make_image
from reliability import record

from retail_pulse_cli.__main__ import main as cli_main

IMAGE = make_image("JPEG", 16, 9)


@pytest.fixture(scope="module")
def images():
    server = ImageServer()
    for i in range(400):
        server.add(f"/e2e-mf/{i}.jpg", IMAGE)
    yield server
    server.close()


def manifest_csv(images, rows: int, store: str = "RP00003") -> bytes:
    lines = ["store_id,image_url,visit_time"]
    lines += [f"{store},{images.url(f'/e2e-mf/{i}.jpg')},2024-03-16T09:00:00Z" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def upload(local_stack, data: bytes) -> str:
    created = local_stack.post("/api/uploads", {"size": len(data)})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["upload_url"].startswith("http://127.0.0.1:")  # the local stack's S3, reachable from here
    stored = requests.put(body["upload_url"], data=data, timeout=30)
    assert stored.status_code == 200, stored.text
    return body["upload_id"]


def phases_until_done(local_stack, job_id: str, timeout: float = 90) -> tuple[set[str], dict]:
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = local_stack.get("/api/status", jobid=job_id).json()
        if body["status"] != "ongoing":
            return seen, body
        seen.add(body["phase"])
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still ongoing: {body}")


def test_a_manifest_uploaded_through_a_presigned_url_runs_and_exports(local_stack, images):
    data = manifest_csv(images, 300)
    submitted = local_stack.post("/api/submit", {"manifest": upload(local_stack, data)})
    assert submitted.status_code == 201 and submitted.json()["phase"] == "accepted", submitted.text
    job_id = submitted.json()["job_id"]
    seen, final = phases_until_done(local_stack, job_id)
    assert final["status"] == "completed" and final["progress"]["total"] == final["progress"]["processed"] == 300
    assert seen <= {"accepted", "enqueuing", "ongoing"}
    results = local_stack.results(job_id)
    assert [r["image_url"] for r in results] == [images.url(f"/e2e-mf/{i}.jpg") for i in range(300)]

    started = local_stack.post(f"/api/results/export?jobid={job_id}&format=csv", None)
    assert started.status_code == 202, started.text
    export_id = started.json()["export_id"]
    deadline = time.monotonic() + 60
    while (state := local_stack.get("/api/results/export", export_id=export_id).json())["state"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["state"] == "ready" and state["rows"] == 300 and state["url"].startswith("http://127.0.0.1:")
    downloaded = requests.get(state["url"], timeout=30)
    assert downloaded.status_code == 200
    assert f'filename="{job_id}.csv"' in downloaded.headers.get("Content-Disposition", "")
    rows = list(csv.DictReader(io.StringIO(downloaded.text)))
    assert [r["image_url"] for r in rows] == [r["image_url"] for r in results]
    # The URL is signed for this one object and method.
    assert requests.put(state["url"], data=b"x", timeout=30).status_code == 403


def test_an_upload_url_takes_only_the_declared_size(local_stack):
    created = local_stack.post("/api/uploads", {"size": 10}).json()
    assert requests.put(created["upload_url"], data=b"0123456789-too-long", timeout=30).status_code == 403
    refused = local_stack.post("/api/submit", {"manifest": created["upload_id"]})
    assert refused.status_code == 400 and "no file uploaded" in refused.json()["error"]


def test_a_fan_out_that_fails_mid_way_resumes_from_its_checkpoint(local_stack, images):
    """The fan-out's write of its position is refused once (its invocation fails): the message comes
    back within seconds and the next invocation goes on from the last checkpoint."""
    total = 250
    local_stack.inject_fault("UpdateItem", "ValidationException", 1, matching="fanout_pos")
    try:
        manifest = upload(local_stack, manifest_csv(images, total))
        job_id = local_stack.post("/api/submit", {"manifest": manifest}).json()["job_id"]
        _, final = phases_until_done(local_stack, job_id, timeout=120)
    finally:
        local_stack.clear_faults()
    progress = final["progress"]
    assert final["status"] == "completed" and progress["processed"] == progress["total"] == total, final
    results = local_stack.results(job_id)
    assert len(results) == len({r["image_url"] for r in results}) == total
    record("fan-out invocation failed mid-way (local stack), resumed from its checkpoint", cases=total)


def test_invalid_rows_through_the_local_stack(local_stack, images):
    data = manifest_csv(images, 3) + b"RP00003,not-a-url,2024-03-16T09:00:00Z\n"
    job_id = local_stack.post("/api/submit", {"manifest": upload(local_stack, data)}).json()["job_id"]
    _, final = phases_until_done(local_stack, job_id)
    assert final["status"] == "failed"
    assert final["manifest_errors"] == [{"line": 5, "error": "image_url: must be an absolute http(s) URL"}]
    assert final["progress"]["total"] == 0 and local_stack.results(job_id) == []


def test_the_cli_uploads_a_manifest_and_exports_the_results(local_stack, images, tmp_path, capsys):
    path = tmp_path / "visits.jsonl"
    visits = [
        {"store_id": "RP00004", "image_url": [images.url(f"/e2e-mf/{i}.jpg")], "visit_time": "2024-03-16T09:00:00Z"}
        for i in range(40)
    ]
    path.write_text("\n".join(json.dumps(v) for v in visits))
    base = ["--base-url", local_stack.url]
    assert cli_main([*base, "submit", str(path), "--wait", "--interval", "0.2"]) == 0
    out = capsys.readouterr()
    job_id = out.out.split()[1].rstrip(":")
    assert "(manifest, jsonl)" in out.err and "completed" in out.out
    target = tmp_path / "out.jsonl"
    assert cli_main([*base, "results", job_id, "--export", "jsonl", "-o", str(target)]) == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == 40 and lines[0]["store_id"] == "RP00004"
