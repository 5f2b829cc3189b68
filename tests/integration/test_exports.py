"""Results exports in-process on moto: started by the API, written by the export function as a
multipart upload, fetched through the presigned URL as a client would."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests
from harness import make_image
from reliability import record

from retail_pulse.logic import exports

IMAGE = make_image("PNG", 12, 7)


@pytest.fixture
def job(stack, image_server):
    """A finished job: 25 images, 5 of them failed (404), one store unknown."""
    urls = [image_server.add(f"/ex/{i}.png", IMAGE) for i in range(20)]
    urls += [image_server.url(f"/ex/missing-{i}.png") for i in range(4)]
    visits = [
        {"store_id": "RP00001", "image_url": urls[i : i + 6], "visit_time": "2024-03-15T10:00:00Z"}
        for i in (0, 6, 12, 18)
    ]
    visits.append({"store_id": "NOPE1", "image_url": [urls[0]], "visit_time": "2024-03-15T10:00:00Z"})
    job_id = stack.submit_job(visits)
    stack.drain()
    return job_id


def export(stack, job_id: str, **query) -> tuple[dict, bytes]:
    code, started = stack.api("POST", "/api/results/export", query={"jobid": job_id, **query})
    assert code == 202 and started["state"] == "running", started
    code, running = stack.api("GET", "/api/results/export", query={"export_id": started["export_id"]})
    assert code == 200 and running["state"] == "running" and "url" not in running
    assert stack.export_all() == 1
    code, ready = stack.api("GET", "/api/results/export", query={"export_id": started["export_id"]})
    assert code == 200 and ready["state"] == "ready", ready
    response = requests.get(ready["url"], timeout=10)  # the presigned URL, as a client uses it
    assert response.status_code == 200
    return ready, response.content


def test_jsonl_and_csv_hold_the_results_of_the_api_in_submission_order(stack, job):
    expected = stack.results(job)
    ready, data = export(stack, job)
    assert ready["rows"] == 25 and ready["complete"] is True and ready["format"] == "jsonl"
    assert [json.loads(line) for line in data.decode().splitlines()] == expected
    ready, data = export(stack, job, format="csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert list(rows[0]) == list(expected[0])  # the columns are the fields of /api/results
    assert [r["image_url"] for r in rows] == [r["image_url"] for r in expected]
    assert [r["width"] for r in rows] == ["" if r["width"] is None else str(r["width"]) for r in expected]


def test_a_status_filter_exports_only_those_results(stack, job):
    ready, data = export(stack, job, status="failed")
    failed = [r for r in stack.results(job) if r["status"] == "failed"]
    assert ready["status"] == "failed" and ready["rows"] == len(failed) == 5
    assert [json.loads(line) for line in data.decode().splitlines()] == failed


def test_an_export_of_a_running_job_says_how_far_it_got(stack, image_server):
    urls = [image_server.add(f"/ex/run-{i}.png", IMAGE) for i in range(40)]
    job_id = stack.submit_job([{"store_id": "RP00002", "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"}])
    stack.invoke_process(stack.receive())  # one batch of 10 ended, 30 still queued
    stack.pump_streams()
    ready, data = export(stack, job_id)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    *results, trailer = lines
    assert ready["complete"] is False and ready["rows"] == len(results) == 10
    assert trailer["export"]["job_status"] == "ongoing" and trailer["export"]["complete"] is False
    assert trailer["export"]["progress"]["total"] == 40 and trailer["export"]["rows"] == 10
    ready, data = export(stack, job_id, format="csv")
    assert data.decode().splitlines()[-1].startswith(f"# export of job {job_id} as of ")
    stack.drain()  # the job goes on unharmed
    ready, data = export(stack, job_id)
    assert ready["complete"] is True and ready["rows"] == 40 and "export" not in json.loads(data.splitlines()[-1])
    record("export of a running job: the file holds what had ended and says how far the job got", cases=3)


@pytest.mark.parametrize(
    ("method", "query", "message"),
    [
        ("POST", {"jobid": "nope"}, "jobid: no job nope"),
        ("POST", {"jobid": "nope", "format": "xml"}, "format: input should be"),
        ("POST", {"jobid": "nope", "status": "maybe"}, "status: input should be"),
        ("GET", {"export_id": "nope"}, "export_id: no export nope"),
        ("GET", {}, "export_id: required"),
    ],
)
def test_bad_export_requests_are_400(stack, method, query, message):
    code, body = stack.api(method, "/api/results/export", query=query)
    assert code == 400 and body["error"].startswith(message), body


def test_an_export_that_keeps_failing_ends_failed(stack, job, monkeypatch):
    monkeypatch.setattr(stack.export_results, "MAX_RECEIVES", 1)

    def broken(*args, **kwargs):
        raise RuntimeError("S3 is down")

    monkeypatch.setattr(type(stack.export_results.kit.files()), "writer", broken)
    code, started = stack.api("POST", "/api/results/export", query={"jobid": job})
    stack.export_all()
    code, failed = stack.api("GET", "/api/results/export", query={"export_id": started["export_id"]})
    assert code == 200 and failed["state"] == "failed" and "S3 is down" in failed["error"]


def test_rows_are_formatted_as_the_dashboards_csv():
    body = {c: None for c in exports.files_format.RESULT_COLUMNS} | {"store_id": "=cmd", "error": 'say "hi", bye'}
    line = exports.files_format.rows("csv", [body]).decode()
    # index, store_id, ..., error, error_class, processed_at: no formula runs in a spreadsheet
    assert line == ',\'=cmd,,,,,,,"say ""hi"", bye",,\r\n'
