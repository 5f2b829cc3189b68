"""What operators see: EMF metrics and JSON log records the handlers print, read back from stdout."""

from __future__ import annotations

import io
import json
import logging

import pytest
from harness import LambdaContext, api_event, make_image

from retail_pulse.adapters.dynamodb.repository import DynamoJobRepository
from retail_pulse.domain.models import FinishedJob

NAMESPACE = "RetailPulse/dev"  # POWERTOOLS_METRICS_NAMESPACE as template.yaml resolves it (Stage=dev)


@pytest.fixture
def printed(stack, capsys):
    """Returns the JSON objects printed since the last call: EMF blobs (stdout) and log records."""
    # Log records are read through a handler of our own with Powertools' JSON formatter: the
    # function's handler keeps whichever stream was stdout when its Logger was first created.
    service_logger = logging.getLogger(stack.submit.logger.service)  # one per service, shared by every function
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setFormatter(stack.submit.logger.registered_formatter)
    service_logger.addHandler(handler)
    stack.submit.logger.setLevel("INFO")

    def read() -> list[dict]:
        lines = capsys.readouterr().out.splitlines() + records.getvalue().splitlines()
        records.seek(0)
        records.truncate()
        return [json.loads(line) for line in lines if line.startswith("{")]

    yield read
    service_logger.removeHandler(handler)


def metric_blobs(objects: list[dict]) -> list[dict]:
    blobs = [o for o in objects if "_aws" in o]
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        assert directive["Dimensions"] == [["service"]] and blob["service"] == "retail-pulse"
    return blobs


def values(blobs: list[dict], name: str) -> list[float]:
    out: list[float] = []
    for blob in blobs:
        if name in blob:
            out += blob[name] if isinstance(blob[name], list) else [blob[name]]
    return out


def test_submit_logs_the_job_with_the_request_id_and_emits_its_size(stack, printed):
    visits = [
        {
            "store_id": "RP00001",
            "image_url": ["https://x/a.jpg", "https://x/b.jpg"],
            "visit_time": "2024-03-15T10:00:00Z",
        }
    ]
    event = api_event("POST", "/api/submit", body=json.dumps({"count": 1, "visits": visits}))
    response = stack.submit.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 201
    job_id = json.loads(response["body"])["job_id"]
    objects = printed()
    [accepted] = [o for o in objects if o.get("message") == "job accepted"]
    assert accepted["correlation_id"] == event["requestContext"]["requestId"]
    assert (accepted["job_id"], accepted["images"], accepted["level"]) == (job_id, 2, "INFO")
    assert values(metric_blobs(objects), "SubmitSize") == [2]


def test_rejected_submit_emits_no_size(stack, printed):
    status, _ = stack.api("POST", "/api/submit", body="{nope")
    assert status == 400
    objects = printed()
    assert values(metric_blobs(objects), "SubmitSize") == []
    assert [o["error"] for o in objects if o.get("message") == "request rejected"] == ["body: not valid JSON"]


def test_processing_emits_per_image_metrics_and_one_job_duration(stack, image_server, printed):
    small = make_image("PNG", 30, 20)
    large = make_image("JPEG", 300, 200)
    urls = [image_server.add("/obs/small.png", small, "image/png"), image_server.add("/obs/large.jpg", large)]
    missing = image_server.url("/obs/missing.jpg")
    job_id = stack.submit_job(
        [
            {"store_id": "RP00001", "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"},
            {"store_id": "RP00002", "image_url": [missing], "visit_time": "2024-03-15T10:00:00Z"},
        ]
    )
    printed()  # drop what submit printed
    # One image per invocation, each counted by the stream consumer before the next: only the one
    # that counts the last image finishes the job.
    per_invocation = []
    while messages := stack.receive(max_messages=1):
        assert stack.invoke_process(messages) == set()
        stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        stack.pump_streams()
        per_invocation.append(printed())
    assert len(per_invocation) == 3

    blobs = [metric_blobs(objects) for objects in per_invocation]
    everything = [b for invocation in blobs for b in invocation]
    assert sum(values(everything, "ImagesSucceeded")) == 2
    assert sum(values(everything, "ImagesFailed")) == 1
    assert sorted(values(everything, "ImageBytes")) == sorted([len(small), len(large)])  # the 404 has no bytes
    download_times = values(everything, "DownloadTime")
    assert len(download_times) == 2 and all(t >= 0 for t in download_times)
    # JobDuration once, from the stream consumer's invocation that finished the job.
    assert [values(invocation, "JobDuration") != [] for invocation in blobs] == [False, False, True]
    [duration] = values(blobs[-1], "JobDuration")
    blob = next(b for b in blobs[-1] if "JobDuration" in b)
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["JobDuration"] == "Milliseconds"

    logs = [o for objects in per_invocation for o in objects if "message" in o]
    [failed] = [o for o in logs if o["message"] == "image failed"]
    assert (failed["job_id"], failed["store_id"], failed["image_index"]) == (job_id, "RP00002", 2)
    assert "HTTP 404" in failed["error"] and failed["level"] == "WARNING"
    [finished] = [o for o in logs if o["message"] == "job finished"]
    assert (finished["job_id"], finished["status"], finished["duration_ms"]) == (job_id, "failed", duration)
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    expected = FinishedJob(job_id, "failed", job["created_at"], job["finished_at"]).duration_ms
    assert duration == expected


def test_only_the_writer_that_finishes_a_job_reports_it(stack, image_server):
    url = image_server.add("/obs/one.png", make_image("PNG", 5, 5), "image/png")
    job_id = stack.submit_job([{"store_id": "RP00001", "image_url": [url], "visit_time": "2024-03-15T10:00:00Z"}])
    stack.drain()
    repository = DynamoJobRepository(stack.stack.refs["JobsTable"])
    assert repository.finish_if_done(job_id) is None  # already finished by the stream consumer


def test_finished_job_duration_is_submit_to_finish():
    job = FinishedJob("j", "completed", "2024-03-15T10:00:00.000Z", "2024-03-15T10:01:01.250Z")
    assert job.duration_ms == 61_250
