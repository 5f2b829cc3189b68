"""Jobs from a manifest, end to end in-process on moto: upload through a presigned URL, submit, the
fan-out (checked, then enqueued, resuming from its checkpoint after a crash or a timeout), processing,
counting, the stall sweeper, big retries, and the inline body's limit."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from harness import LambdaContext, make_image, sqs_event
from reliability import record

from local_stack.proxy_event import Identity, build_event
from retail_pulse.adapters.dynamodb.fanout import FanOutItems
from retail_pulse.adapters.sqs import SqsImageQueue
from retail_pulse.logic import fanout, manifests

IMAGE = make_image("JPEG", 30, 20)


@pytest.fixture
def images(image_server):
    image_server.add("/mf/ok.jpg", IMAGE)
    for i in range(1000):
        image_server.add(f"/mf/{i}.jpg", IMAGE)
    return image_server


def csv_manifest(images, rows: int, store: str = "RP00001", extra: list[str] | None = None) -> bytes:
    lines = ["store_id,image_url,visit_time"]
    lines += [f"{store},{images.url(f'/mf/{i}.jpg')},2024-03-15T10:{i // 100 % 60:02d}:00Z" for i in range(rows)]
    lines += extra or []
    return ("\n".join(lines) + "\n").encode()


def status(stack, job_id: str) -> dict:
    code, body = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert code == 200, body
    return body


def assert_exact(stack, job_id: str, total: int) -> list[dict]:
    """Every image has one result, in order; the counts are the results'."""
    body = status(stack, job_id)
    results = stack.results(job_id)
    assert len(results) == total, (len(results), total)
    progress = body["progress"]
    assert progress["total"] == total and progress["processed"] == total, body
    assert progress["failed"] == sum(r["status"] == "failed" for r in results)
    return results


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_a_manifest_job_of_each_format_runs_to_the_end(stack, images, fmt):
    url = images.url("/mf/{}.jpg")
    visits = [
        {"store_id": "RP00001", "image_url": [url.format(1), url.format(2)], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "NOPE9", "image_url": [url.format(3)], "visit_time": "2024-03-15T11:00:00Z"},
        {"store_id": "RP00002", "image_url": [url.format(4)], "visit_time": "2024-03-15T12:00:00+05:30"},
    ]
    if fmt == "json":
        data = json.dumps({"count": 3, "visits": visits}, indent=2).encode()
    elif fmt == "jsonl":
        data = "\n".join(json.dumps(v) for v in visits).encode()
    else:
        data = ("store_id,image_url,visit_time\n" + "".join(
            f"{v['store_id']},{u},{v['visit_time']}\n" for v in visits for u in v["image_url"]
        )).encode()  # fmt: skip
    code, accepted = stack.api("POST", "/api/submit", body={"manifest": stack.upload(data)})
    assert code == 201, accepted
    assert accepted["phase"] == "accepted" and accepted["format"] == fmt and "total" not in accepted
    job_id = accepted["job_id"]
    before = status(stack, job_id)
    assert before["phase"] == "accepted" and before["progress"]["total"] == 0
    assert stack.fan_out_all() == 1
    after = status(stack, job_id)
    assert after["phase"] == "ongoing" and after["progress"]["total"] == 4
    stack.drain()
    results = assert_exact(stack, job_id, 4)
    assert [r["image_url"][-5] for r in results] == ["1", "2", "3", "4"]  # submission order
    assert results[2]["error"] == "store_id NOPE9 not in Store Master"  # ended failed, never downloaded
    final = status(stack, job_id)
    assert final["status"] == "failed" and "phase" not in final
    assert final["error"] == [{"store_id": "NOPE9", "error": "store_id NOPE9 not in Store Master"}]


def test_a_manifest_with_invalid_rows_fails_naming_its_lines_and_nothing_is_processed(lifecycle, images):
    stack = lifecycle
    data = csv_manifest(
        images,
        5,
        extra=["RP00001,ftp://x/y.jpg,2024-03-15T10:00:00Z", "RP00001,http://h/y.jpg,soon", "only,two"],
    )
    job_id = stack.submit_manifest(data)
    stack.fan_out_all()
    body = status(stack, job_id)
    assert body["status"] == "failed"
    assert body["manifest_error_count"] == 3
    assert body["manifest_errors"] == [
        {"line": 7, "error": "image_url: must be an absolute http(s) URL"},
        {"line": 8, "error": "visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z"},
        {"line": 9, "error": "2 columns where the header has 3"},
    ]
    assert body["reason"].startswith("manifest: 3 invalid row(s)")
    assert stack.queue_depth() == 0 and stack.results(job_id) == []  # nothing of it enqueued or ended
    [notice] = [e for e in stack.events() if e["job_id"] == job_id]
    assert notice["status"] == "failed"
    record("manifest with invalid rows: job failed before any image was enqueued", cases=3)


def test_an_unreadable_manifest_stops_at_its_line(stack):
    job_id = stack.submit_manifest(b'{"count": 2, "visits": [\n{"store_id": "RP00001"\n')
    stack.fan_out_all()
    body = status(stack, job_id)
    assert body["status"] == "failed"
    [error] = body["manifest_errors"]
    assert error["line"] == 2 and error["error"].startswith("not valid JSON")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"manifest": "0" * 32}, 400, "manifest: no file uploaded as"),
        ({"manifest": "../etc/passwd"}, 400, "manifest: must be an upload_id"),
        ({"manifest": 7}, 400, "manifest: must be an upload_id"),
        ({"manifest": "0" * 32, "visits": []}, 400, "visits: not with a manifest"),
        ({"manifest": "0" * 32, "callback_url": "ftp://x"}, 400, "callback_url: must be an absolute http(s) URL"),
    ],
)
def test_a_manifest_submit_that_names_no_usable_upload_is_refused(stack, body, code, message):
    status_code, answer = stack.api("POST", "/api/submit", body=body)
    assert status_code == code and answer["error"].startswith(message), answer


def test_uploads_that_are_not_manifests_are_refused_at_submit(stack):
    for data, message in ((b"hello\nworld\n", "manifest: not a manifest"), (b"   \n", "manifest: the file is empty")):
        code, answer = stack.api("POST", "/api/submit", body={"manifest": stack.upload(data)})
        assert code == 400 and answer["error"].startswith(message), answer


def test_sizes_over_the_manifest_bound_are_refused(stack, monkeypatch):
    monkeypatch.setenv("MAX_MANIFEST_BYTES", "100")
    stack.reset_caches()
    code, answer = stack.api("POST", "/api/uploads", body={"size": 101})
    assert code == 413 and "at most 100 bytes" in answer["error"]
    upload_id = stack.upload(b"store_id,image_url,visit_time\n" + b"x" * 100, size=False)  # no size: bound at submit
    code, answer = stack.api("POST", "/api/submit", body={"manifest": upload_id})
    assert code == 413 and answer["error"] == "manifest: 130 bytes; a manifest may hold at most 100"


def test_a_manifest_over_max_images_per_manifest_fails_at_the_first_row_over_it(stack, images, monkeypatch):
    """MAX_IMAGES_PER_MANIFEST bounds a manifest job (1,000,000 by default): at the limit it runs, one
    image more and it ends failed naming the line, nothing of it enqueued."""
    monkeypatch.setenv("MAX_IMAGES_PER_MANIFEST", "5")
    stack.reset_caches()
    at_limit = stack.submit_manifest(csv_manifest(images, 5))
    over = stack.submit_manifest(csv_manifest(images, 6))
    assert stack.fan_out_all() == 2
    body = status(stack, over)
    assert body["status"] == "failed" and body["progress"]["total"] == 0
    assert body["manifest_errors"] == [
        {"line": 7, "error": "more than 5 images: a manifest may hold at most that many"}
    ]
    assert stack.results(over) == []
    assert status(stack, at_limit)["progress"]["total"] == 5
    assert stack.queue_depth() == 5  # the images of the job at the limit only
    stack.drain()
    assert_exact(stack, at_limit, 5)


def test_a_job_reads_the_version_it_was_accepted_with(stack, images):
    """The upload URL still works after submit: a file put there again does not change the job."""
    code, created = stack.api("POST", "/api/uploads")
    assert code == 201 and created["size"] is None
    import requests

    requests.put(created["upload_url"], data=csv_manifest(images, 3), timeout=10).raise_for_status()
    job_id = stack.api("POST", "/api/submit", body={"manifest": created["upload_id"]})[1]["job_id"]
    requests.put(created["upload_url"], data=csv_manifest(images, 50), timeout=10).raise_for_status()
    stack.fan_out_all()
    stack.drain()
    assert_exact(stack, job_id, 3)


def test_idempotency_key_replays_a_manifest_submit(stack, images):
    body = {"manifest": stack.upload(csv_manifest(images, 2))}
    first = stack.api("POST", "/api/submit", body=body, headers={"Idempotency-Key": "k-1"})
    again = stack.api("POST", "/api/submit", body=body, headers={"Idempotency-Key": "k-1"})
    assert first == again and first[0] == 201
    assert stack.fan_out_all() == 1  # one job, one fan-out


class Crash(BaseException):
    """The fan-out's process dies (not an exception its handler could catch)."""


def test_a_fan_out_killed_mid_enqueue_resumes_from_its_checkpoint(stack, images, monkeypatch):
    monkeypatch.setattr(fanout, "CHECKPOINT_IMAGES", 100)
    monkeypatch.setattr(fanout, "LEASE_MARGIN_S", -10_000)  # the dead holder's lease has run out on redelivery
    total = 650
    job_id = stack.submit_manifest(csv_manifest(images, total))
    stack.fan_out_all(max_messages=1)  # pass 1 only? no: both passes run in one go when time allows
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    # Start again from a job that has only been checked: roll it back to `enqueuing` at the start.
    ddb = boto3.client("dynamodb")
    key = {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    ddb.update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key=key,
        UpdateExpression="SET phase = :p, enqueued = :z REMOVE fanout_pos",
        ExpressionAttributeValues={":p": {"S": "enqueuing"}, ":z": {"N": "0"}},
    )
    stack.sqs.send_message(QueueUrl=stack.fanout_url, MessageBody=json.dumps({"job_id": job_id}))

    sent = {"batches": 0}
    real_send = SqsImageQueue._send_batch

    def dying_send(self, batch):
        sent["batches"] += 1
        if sent["batches"] == 27:  # 260 images in: after the checkpoint at 200
            raise Crash()
        return real_send(self, batch)

    monkeypatch.setattr(SqsImageQueue, "_send_batch", dying_send)
    monkeypatch.setattr(FanOutItems, "release_fanout", lambda *a: None)  # a killed process releases nothing
    [message] = stack.sqs.receive_message(QueueUrl=stack.fanout_url, AttributeNames=["All"])["Messages"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=stack.fanout_url, AttributeNames=["QueueArn"])["Attributes"]
    with pytest.raises(Crash):
        stack.fan_out.lambda_handler(sqs_event([message], arn["QueueArn"]), LambdaContext())
    body = status(stack, job_id)
    assert body["phase"] == "enqueuing" and body["enqueued"] == 200  # the last checkpoint
    # Images not enqueued yet are not in the queue: the plan counts them apart.
    assert body["phases"] == {"to_enqueue": total - 200, "queued": 200, "in_flight": 0, "ended": 0}, body["phases"]
    # SQS delivers the message again once its visibility runs out.
    stack.sqs.change_message_visibility(
        QueueUrl=stack.fanout_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    monkeypatch.setattr(SqsImageQueue, "_send_batch", real_send)
    stack.fan_out_all()
    assert status(stack, job_id)["phase"] == "ongoing"
    enqueued = stack.queue_depth()
    assert total <= enqueued <= total + 60  # images 200-259 went twice: at most one checkpoint's worth
    stack.drain()
    results = assert_exact(stack, job_id, total)
    assert len({r["image_url"] for r in results}) == total  # each image once
    record(
        "fan-out killed mid-enqueue, resumed from its checkpoint (SQS redelivery)",
        cases=total,
        lost=total - len(results),
        doubled=0,
        stuck=0,
    )


def test_a_fan_out_out_of_time_hands_on_and_results_counted_meanwhile_stay_exact(stack, images, monkeypatch):
    """Each invocation gets through 100 images, then hands on through its queue; the images enqueued so
    far are processed and counted between invocations: the job is not done until the last is."""
    monkeypatch.setattr(fanout, "CHECKPOINT_IMAGES", 100)
    monkeypatch.setattr(fanout._Pass, "out_of_time", property(lambda self: self.at_images - self.started >= 100))
    total = 430
    job_id = stack.submit_manifest(csv_manifest(images, total))
    invocations = 0
    seen_enqueuing = False
    while stack.fan_out_all(max_messages=1):  # one invocation, then process what it enqueued
        invocations += 1
        stack.drain()
        body = status(stack, job_id)
        if body.get("phase") == "enqueuing":
            seen_enqueuing = True
            assert body["status"] == "ongoing"
            assert body["progress"]["processed"] == body["enqueued"] < total  # counted, not finished
    assert invocations >= 9 and seen_enqueuing  # 5 for the check (100 each), 5 to enqueue
    assert stack.queue_depth() == 0
    assert status(stack, job_id)["status"] == "completed"
    assert_exact(stack, job_id, total)
    record("fan-out out of time: handed on through its queue, results counted while enqueuing", cases=total)


def test_a_fan_out_that_keeps_failing_fails_its_job_on_the_last_delivery(lifecycle, images, monkeypatch):
    stack = lifecycle
    job_id = stack.submit_manifest(csv_manifest(images, 5))

    def refused(self, batch):
        from retail_pulse.ports import EnqueueError

        raise EnqueueError("SQS refused")

    monkeypatch.setattr(SqsImageQueue, "_send_batch", refused)
    monkeypatch.setenv("FAN_OUT_MAX_RECEIVES", "1")
    stack.reset_caches()
    stack.fan_out_all()
    body = status(stack, job_id)
    assert body["status"] == "failed" and body["reason"].startswith("the fan-out kept failing")
    assert body["progress"]["processed"] == body["progress"]["total"] == 5
    assert [e["status"] for e in stack.events() if e["job_id"] == job_id] == ["failed"]


def test_cancel_while_enqueuing_stops_the_fan_out(stack, images, monkeypatch):
    monkeypatch.setattr(fanout, "CHECKPOINT_IMAGES", 100)
    monkeypatch.setattr(fanout._Pass, "out_of_time", property(lambda self: self.at_images - self.started >= 100))
    job_id = stack.submit_manifest(csv_manifest(images, 350))
    while status(stack, job_id)["phase"] != "enqueuing" or status(stack, job_id)["enqueued"] == 0:
        stack.fan_out_all(max_messages=1)
    code, cancelled = stack.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    assert code == 200, cancelled
    stack.fan_out_all()
    stack.drain()
    body = status(stack, job_id)
    progress = body["progress"]
    assert body["status"] == "cancelled" and progress["total"] == 350
    assert progress["processed"] == progress["succeeded"] + progress["failed"] + progress["cancelled"] == 350
    assert len(stack.results(job_id)) == progress["succeeded"] + progress["failed"]


def age_job(stack, job_id: str, seconds: int = 3 * 3600) -> None:
    old = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - seconds))
    boto3.client("dynamodb").update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET progressed_at = :t",
        ExpressionAttributeValues={":t": {"S": old}},
    )


def test_the_stall_sweeper_walks_a_stalled_manifest_job(stack, images):
    """Messages lost after the fan-out: the sweeper has the fan-out walk the manifest beside the
    results and fail each image without one (no second copy of the list exists)."""
    total = 120
    job_id = stack.submit_manifest(csv_manifest(images, total))
    stack.fan_out_all()
    lost = 0
    for _ in range(3):  # 30 messages lost
        for m in stack.receive():
            stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
            lost += 1
    stack.drain()
    assert status(stack, job_id)["status"] == "ongoing"
    age_job(stack, job_id)
    swept = stack.stall_sweeper.lambda_handler({}, LambdaContext())
    assert swept["swept"] == [job_id]
    stack.fan_out_all()
    stack.pump_streams()
    body = status(stack, job_id)
    assert body["status"] == "failed" and body["progress"]["failed"] == lost
    results = assert_exact(stack, job_id, total)
    assert sum(r["error"].startswith("stalled:") for r in results if r["error"]) == lost
    record("stalled manifest job: the sweeper walks the manifest (no copy of it)", cases=total, lost=0, stuck=0)


def test_a_fan_out_stalled_before_enqueuing_fails_its_job(stack, images):
    job_id = stack.submit_manifest(csv_manifest(images, 3))
    stack.sqs.purge_queue(QueueUrl=stack.fanout_url)  # its fan-out message is gone
    age_job(stack, job_id)
    stack.stall_sweeper.lambda_handler({}, LambdaContext())
    body = status(stack, job_id)
    assert body["status"] == "failed" and body["reason"].startswith("fan-out stalled")
    assert body["progress"] == {"total": 0, "processed": 0, "succeeded": 0, "failed": 0}


def test_a_retry_of_many_failed_images_goes_through_the_fan_out(stack, images, monkeypatch):
    monkeypatch.setenv("RETRY_INLINE_MAX_IMAGES", "3")
    stack.reset_caches()
    url = images.url("/mf/missing.jpg")
    visits = [
        {"store_id": "RP00001", "image_url": [url + f"?{i}"], "visit_time": "2024-03-15T10:00:00Z"} for i in range(6)
    ]
    visits.append(
        {"store_id": "RP00001", "image_url": [images.url("/mf/ok.jpg")], "visit_time": "2024-03-15T10:00:00Z"}
    )
    job_id = stack.submit_job(visits)
    stack.drain()
    assert status(stack, job_id)["progress"]["failed"] == 6
    code, retry = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})
    assert code == 201 and retry["phase"] == "accepted" and retry["retry_of"] == job_id, retry
    stack.fan_out_all()
    assert status(stack, retry["job_id"])["progress"]["total"] == 6
    stack.drain()
    body = status(stack, retry["job_id"])
    assert body["retry_of"] == job_id and body["progress"] == {"total": 6, "processed": 6, "succeeded": 0, "failed": 6}
    assert [r["image_url"] for r in stack.results(retry["job_id"])] == [url + f"?{i}" for i in range(6)]
    assert status(stack, job_id)["retried_by"] == retry["job_id"]
    assert stack.api("POST", "/api/jobs/retry", query={"jobid": job_id})[0] == 409


def test_the_largest_inline_body_fits_lambdas_event_and_one_more_byte_is_refused(stack):
    """The inline limit keeps the whole event (body escaped, headers twice, context) within 6 MB."""
    limit = manifests.MAX_INLINE_BODY_BYTES
    # Long URLs (few images, well within MAX_IMAGES_PER_JOB) of a store not in the Store Master (nothing
    # is enqueued), then spaces between the tokens (one byte each, escaped or not) up to the limit.
    url = "https://images.example.com/" + '"q' * 950
    visit = {"store_id": "NOPE1", "image_url": [url], "visit_time": "2024-03-15T10:00:00Z"}
    count = limit // manifests.inline_event_bytes(json.dumps(visit))
    while manifests.inline_event_bytes(body := json.dumps({"count": count, "visits": [visit] * count})) > limit:
        count -= 1
    body = body[:-1] + " " * (limit - manifests.inline_event_bytes(body)) + "}"
    assert manifests.inline_event_bytes(body) == limit
    manifests.check_inline_size(body)  # accepted
    # The event API Gateway builds around it, with the most headers it forwards (10 KB, quotes escaped).
    headers = [("Content-Type", "application/json"), ("User-Agent", '"' * 4000), ("X-Pad", '"' * 6000)]
    event = build_event(
        "/api/submit", None, "POST", "/api/submit", "/dev/api/submit", "", headers, body.encode(),
        Identity("203.0.113.9", '"' * 4000, "k" * 40, "abcdefghij"), "dev",
    )  # fmt: skip
    event_bytes = len(json.dumps(event, ensure_ascii=False).encode())
    assert event_bytes <= manifests.LAMBDA_EVENT_BYTES, event_bytes
    code, accepted = stack.api("POST", "/api/submit", body=body)
    assert code == 201 and accepted["total"] == count, accepted
    code, answer = stack.api("POST", "/api/submit", body=body[:-1] + " }")
    assert code == 413
    assert answer["limit_bytes"] == limit and answer["upload"] == "/api/uploads"
    assert f"over the inline limit of {limit}" in answer["error"] and "POST /api/uploads" in answer["error"]


def test_too_many_inline_images_point_to_uploads(stack, monkeypatch):
    monkeypatch.setenv("MAX_IMAGES_PER_JOB", "2")
    stack.reset_caches()
    visit = {"store_id": "RP00001", "image_url": ["https://x/a.jpg"] * 3, "visit_time": "2024-03-15T10:00:00Z"}
    code, answer = stack.api("POST", "/api/submit", body={"count": 1, "visits": [visit]})
    assert code == 413 and answer["upload"] == "/api/uploads"
    assert answer["error"].startswith("a job may hold at most 2 images; a manifest may hold up to 1000000 images")


# -- manifests and job control (issue 18) together -------------------------------------------------------
def test_pause_while_enqueuing_stops_the_fan_out_and_resume_goes_on_from_its_checkpoint(stack, images, monkeypatch):
    monkeypatch.setattr(fanout, "CHECKPOINT_IMAGES", 100)
    monkeypatch.setattr(fanout._Pass, "out_of_time", property(lambda self: self.at_images - self.started >= 100))
    job_id = stack.submit_manifest(csv_manifest(images, 350))
    while status(stack, job_id)["phase"] != "enqueuing" or status(stack, job_id)["enqueued"] == 0:
        stack.fan_out_all(max_messages=1)
    code, paused = stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})
    assert code == 200 and paused["status"] == "paused" and paused["phase"] == "enqueuing", paused
    stack.fan_out_all()  # stops at its next checkpoint: the job is not ongoing
    stack.drain()  # what was enqueued is parked, not downloaded
    body = status(stack, job_id)
    assert body["status"] == "paused" and body["phase"] == "enqueuing" and body["enqueued"] < 350, body
    assert body["progress"]["processed"] == 0
    code, resumed = stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})
    assert code == 200 and resumed["status"] == "ongoing" and resumed["replayed"] > 0, resumed
    stack.fan_out_all()  # resume sent the fan-out's message again
    stack.drain()
    body = status(stack, job_id)
    assert body["status"] == "completed" and "phase" not in body, body
    assert_exact(stack, job_id, 350)


def test_a_manifest_job_takes_labels_and_a_failure_threshold(stack, images):
    rows = [f"RP00001,{images.url('/mf/missing.jpg')}?{i},2024-03-15T10:00:00Z" for i in range(20)]
    body = {"labels": {"team": "mf"}, "tolerated_failure_count": 2}
    job_id = stack.submit_manifest(csv_manifest(images, 0, extra=rows), **body)
    accepted = status(stack, job_id)
    assert accepted["labels"] == {"team": "mf"}, accepted
    assert accepted["failure_threshold"]["tolerated_failure_count"] == 2
    code, listed = stack.api("GET", "/api/jobs", query={"label": "team:mf"})
    assert code == 200 and [j["job_id"] for j in listed["jobs"]] == [job_id], listed
    stack.fan_out_all()
    first = stack.receive(max_messages=3)  # three 404s in one batch: over the tolerated 2
    assert len(first) == 3 and not stack.invoke_process(first)
    ended = status(stack, job_id)
    assert ended["status"] == "failed" and ended["reason"].startswith("failure threshold exceeded"), ended
    assert ended["progress"] == {"total": 20, "processed": 20, "succeeded": 0, "failed": 3, "skipped": 17}
    stack.drain()  # the rest are dropped like a cancel's
    assert status(stack, job_id)["progress"] == ended["progress"]
    code, refused = stack.api("POST", "/api/submit", body={"manifest": "0" * 32, "labels": "x"})
    assert code == 400 and refused["error"].startswith("labels"), refused


def test_a_selective_retry_of_many_failed_images_is_filtered_by_the_fan_out(stack, images, monkeypatch):
    monkeypatch.setenv("RETRY_INLINE_MAX_IMAGES", "3")
    stack.reset_caches()
    url = images.url("/mf/missing.jpg")
    visits = [
        {"store_id": store, "image_url": [url + f"?{store}{i}"], "visit_time": "2024-03-15T10:00:00Z"}
        for i in range(4)
        for store in ("RP00001", "RP00002")
    ]
    code, accepted = stack.api("POST", "/api/submit", body={"count": 8, "visits": visits, "labels": {"team": "retry"}})
    assert code == 201, accepted
    job_id = accepted["job_id"]
    stack.drain()
    assert status(stack, job_id)["progress"]["failed"] == 8
    # A filter matching none of them: the retry job fails, and the job can be retried again.
    code, none = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "store_id": "RP09999"})
    assert code == 201 and none["phase"] == "accepted", none
    stack.fan_out_all()
    refused = status(stack, none["job_id"])
    assert refused["status"] == "failed" and "matching the filter" in refused["reason"], refused
    assert "retried_by" not in status(stack, job_id)
    code, retry = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "store_id": "RP00002"})
    assert code == 201 and retry["phase"] == "accepted", retry
    stack.fan_out_all()
    stack.drain()
    body = status(stack, retry["job_id"])
    assert body["progress"] == {"total": 4, "processed": 4, "succeeded": 0, "failed": 4}, body
    assert body["labels"] == {"team": "retry"}
    assert [r["store_id"] for r in stack.results(retry["job_id"])] == ["RP00002"] * 4
    assert status(stack, job_id)["retried_by"] == retry["job_id"]
