"""The whole app over HTTP through the local stack (subprocess), images from a local HTTP server."""

from __future__ import annotations

import json
import time

import pytest
from harness import make_image
from reliability import record


@pytest.fixture(scope="module")
def urls(image_server):
    return {
        "jpg": image_server.add("/e2e/a.jpg", make_image("JPEG", 640, 480)),
        "png": image_server.add("/e2e/b.png", make_image("PNG", 300, 200), "image/png"),
        "webp": image_server.add("/e2e/c.webp", make_image("WEBP", 50, 70), "image/webp"),
        "text": image_server.add("/e2e/notes.txt", b"definitely not an image", "text/plain"),
        "missing": image_server.url("/e2e/missing.jpg"),
    }


@pytest.mark.parametrize("path", ["/api/submit", "/api/submit/"])
def test_job_runs_to_completed_with_exact_perimeters(local_stack, urls, path):
    visits = [
        {"store_id": "RP00001", "image_url": [urls["jpg"], urls["png"]], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "RP00007", "image_url": [urls["webp"]], "visit_time": "2024-03-16T09:00:00+05:30"},
    ]
    job_id = local_stack.submit(visits, path)
    job = local_stack.wait(job_id)
    assert job["status"] == "completed"
    assert job["progress"] == {"total": 3, "processed": 3, "succeeded": 3, "failed": 0}
    results = local_stack.results(job_id, limit=1)
    assert [(r["store_id"], r["perimeter"]) for r in results] == [
        ("RP00001", 2 * (640 + 480)),
        ("RP00001", 2 * (300 + 200)),
        ("RP00007", 2 * (50 + 70)),
    ]


def test_bad_images_fail_the_job_and_name_the_store(local_stack, urls):
    visits = [
        {"store_id": "RP00002", "image_url": [urls["jpg"], urls["missing"]], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "RP00003", "image_url": [urls["text"]], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "RP00004", "image_url": [urls["png"]], "visit_time": "2024-03-15T10:00:00Z"},
    ]
    job = local_stack.wait(local_stack.submit(visits))
    assert job["status"] == "failed"
    assert job["progress"] == {"total": 4, "processed": 4, "succeeded": 2, "failed": 2}
    errors = {e["store_id"]: e["error"] for e in job["error"]}
    assert set(errors) == {"RP00002", "RP00003"}
    assert "HTTP 404" in errors["RP00002"] and "not an image" in errors["RP00003"]
    good = [r for r in local_stack.results(job["job_id"]) if r["status"] == "succeeded"]
    assert sorted(r["perimeter"] for r in good) == [1000, 2240]


def test_a_body_that_is_not_utf8_is_400_through_the_gateway(local_stack):
    # The gateway passes it on as text with U+FFFD, as API Gateway does; submit refuses it.
    body = (
        b'{"count": 1, "visits": [{"store_id": "RP\xff01", "image_url": ["http://x.example/a.jpg"], '
        b'"visit_time": "2024-03-15T10:00:00Z"}]}'
    )
    response = local_stack.post("/api/submit", body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "body: not valid JSON"}


def test_unknown_job_and_count_mismatch_are_400(local_stack, urls):
    response = local_stack.get("/api/status", jobid="nope")
    assert response.status_code == 400 and "jobid" in response.json()["error"]
    assert local_stack.get("/api/results", jobid="nope").status_code == 400
    body = {
        "count": 3,
        "visits": [{"store_id": "RP00001", "image_url": [urls["jpg"]], "visit_time": "2024-03-15T10:00:00Z"}],
    }
    response = local_stack.post("/api/submit", body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("count")
    assert local_stack.post("/api/submit", "{broken").status_code == 400


def test_two_jobs_at_once(local_stack, urls):
    first = local_stack.submit(
        [{"store_id": "RP00005", "image_url": [urls["jpg"]] * 30, "visit_time": "2024-03-15T10:00:00Z"}]
    )
    second = local_stack.submit(
        [{"store_id": "RP00006", "image_url": [urls["png"]] * 30, "visit_time": "2024-03-15T10:00:00Z"}]
    )
    for job_id, perimeter in ((first, 2240), (second, 1000)):
        job = local_stack.wait(job_id)
        assert job["status"] == "completed" and job["progress"]["processed"] == 30
        assert {r["perimeter"] for r in local_stack.results(job_id)} == {perimeter}


def test_refused_result_writes_and_counting_writes_are_retried_and_counted_once(local_stack, urls):
    # Result writes refused more often than botocore retries (retried in the invocation), and the
    # stream consumer's counting transaction refused too (Lambda delivers the records again).
    local_stack.inject_fault("PutItem", "ProvisionedThroughputExceededException", count=12, matching="IMG#")
    local_stack.inject_fault("TransactWriteItems", "ProvisionedThroughputExceededException", count=12)
    job_id = local_stack.submit(
        [{"store_id": "RP00008", "image_url": [urls["jpg"], urls["png"]], "visit_time": "2024-03-15T10:00:00Z"}]
    )
    job = local_stack.wait(job_id, timeout=60)
    assert job["status"] == "completed"
    assert job["progress"] == {"total": 2, "processed": 2, "succeeded": 2, "failed": 0}
    assert len(local_stack.results(job_id)) == 2
    record("Local stack: result and counting writes refused (throttled), retried, counted once", cases=2)


def test_samples_are_served(local_stack):
    response = local_stack.get("/samples/shelf.jpg")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
    assert local_stack.get("/samples/none.jpg").status_code == 404


def test_an_image_whose_result_is_refused_on_every_delivery_is_recorded_as_measured(local_stack, urls):
    # Every result write is refused: the message comes back in seconds, and on its last delivery
    # (maxReceiveCount) process_image hands it to the DLQ with its measured result; once DynamoDB
    # takes writes again the DLQ consumer records that result. A good image never ends failed
    # because our own writes were refused.
    # Result items only (their keys hold "IMG#"): submit's own writes go through.
    local_stack.inject_fault("PutItem", "ProvisionedThroughputExceededException", count=100_000, matching="IMG#")
    try:
        job_id = local_stack.submit(
            [{"store_id": "RP00010", "image_url": [urls["png"]], "visit_time": "2024-03-15T10:00:00Z"}]
        )
        sqs = local_stack.sqs_client()
        dlq = next(url for url in sqs.list_queues()["QueueUrls"] if url.endswith("ImageDeadLetterQueue"))
        # Five deliveries: each retries its refused write inside the call (botocore's retries within
        # ours, ~20 s), then waits 2-24 s to come again (the template's visibility timeout: 360 s).
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]
            if int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the message never reached the DLQ")
        assert local_stack.get("/api/status", jobid=job_id).json()["status"] == "ongoing"
    finally:
        local_stack.clear_faults()
    job = local_stack.wait(job_id, timeout=60)
    assert job["status"] == "completed" and job["progress"] == {"total": 1, "processed": 1, "succeeded": 1, "failed": 0}
    [result] = local_stack.results(job_id)
    assert result["status"] == "succeeded" and result["perimeter"] is not None
    record("Local stack: result writes refused on every delivery: recorded as measured via the DLQ", cases=1)


def test_cli_submits_a_job_file_and_follows_it_to_the_end(local_stack, urls, tmp_path, capsys):
    from retail_pulse_cli.__main__ import main as cli

    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "count": 2,
                "visits": [
                    {"store_id": "RP00001", "image_url": [urls["jpg"]], "visit_time": "2024-03-15T10:00:00Z"},
                    {"store_id": "RP00002", "image_url": [urls["missing"]], "visit_time": "2024-03-15T10:00:00Z"},
                ],
            }
        )
    )
    assert cli(["--base-url", local_stack.url, "submit", str(job), "--wait", "--interval", "0.2"]) == 1  # failed
    out, err = capsys.readouterr()
    assert ": failed" in out and "succeeded 1, failed 1" in out
    assert "store RP00002: HTTP 404" in out
    assert "2/2" in err  # the progress bar reached the end
    job_id = out.split()[1].rstrip(":")
    assert cli(["--base-url", local_stack.url, "results", job_id]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["perimeter"] for r in lines] == [2240, None]
    assert cli(["--base-url", local_stack.url, "status", "no-such-job"]) == 2
