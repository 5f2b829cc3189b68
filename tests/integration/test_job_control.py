"""Job control through the handlers (moto): failure thresholds, pause/resume, selective retry,
progress you can plan with, the results feed, progress events and labels."""

from __future__ import annotations

import boto3
import pytest
from harness import LambdaContext, make_image
from reliability import record

from retail_pulse import handler_kit
from retail_pulse.domain.messages import task_from_message
from retail_pulse.domain.models import ImageResult


@pytest.fixture
def urls(image_server):
    def make(prefix: str, n: int) -> list[str]:
        return [image_server.add(f"/control/{prefix}/{i}.jpg", make_image("JPEG", 10 + i, 10)) for i in range(n)]

    return make


def visit(urls, store="RP00001", when="2024-03-15T10:00:00Z"):
    return {"store_id": store, "image_url": list(urls), "visit_time": when}


def submit(stack, visits, **extra):
    code, body = stack.api("POST", "/api/submit", body={"count": len(visits), "visits": visits, **extra})
    assert code == 201, body
    return body["job_id"]


def status_of(stack, job_id):
    code, body = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert code == 200, body
    return body


def job_item(stack, job_id) -> dict:
    ddb = boto3.client("dynamodb")
    return ddb.get_item(
        TableName=stack.stack.refs["JobsTable"], Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}
    )["Item"]


def feed(stack, job_id, limit=1000, since=None):
    query = {"jobid": job_id, "order": "processed", "limit": limit} | ({"since": since} if since else {})
    code, page = stack.api("GET", "/api/results", query=query)
    assert code == 200, page
    return page


# -- 1. failure thresholds -------------------------------------------------------------------------
def test_a_job_over_its_failure_count_ends_failed_early_and_skips_its_remaining_images(lifecycle, image_server, urls):
    stack = lifecycle
    good = urls("threshold", 6)
    missing = [image_server.url(f"/control/threshold/missing-{i}.jpg") for i in range(3)]
    job_id = submit(stack, [visit(missing + good)], tolerated_failure_count=1)
    first = stack.receive(max_messages=3)  # the three 404s, in one batch
    assert len(first) == 3
    assert not stack.invoke_process(first)
    body = status_of(stack, job_id)
    assert body["status"] == "failed" and body["reason"].startswith("failure threshold exceeded")
    assert body["progress"] == {"total": 9, "processed": 9, "succeeded": 0, "failed": 3, "skipped": 6}
    assert body["failure_threshold"] == {"tolerated_failure_percentage": None, "tolerated_failure_count": 1}
    downloads = len(image_server.requests)
    stack.drain()  # the rest arrive: skipped like a cancel's, no download
    assert len(image_server.requests) == downloads
    assert status_of(stack, job_id)["progress"] == body["progress"]
    [event] = stack.events()
    assert (event["status"], event["progress"]["skipped"], event["reason"]) == ("failed", 6, body["reason"])
    record("threshold crossed: remaining images skipped, counts exact", cases=1)


def test_a_threshold_crossed_by_concurrent_batches_ends_the_job_once_with_exact_counts(lifecycle, image_server, urls):
    stack = lifecycle
    good = urls("threshold2", 10)
    missing = [image_server.url(f"/control/threshold2/missing-{i}.jpg") for i in range(10)]
    job_id = submit(stack, [visit(missing[:5] + good[:5]), visit(missing[5:] + good[5:], store="RP00002")],
                    tolerated_failure_percentage=10)  # fmt: skip
    a, b = stack.receive(max_messages=10), stack.receive(max_messages=10)
    # Both batches read the job while it was ongoing and write their results; the stream consumer
    # counts them in one or two runs: the job ends once, the late results are dropped.
    assert not stack.invoke_process(a) and not stack.invoke_process(b)
    stack.pump_streams()
    body = status_of(stack, job_id)
    p = body["progress"]
    assert body["status"] == "failed" and p["processed"] == p["total"] == 20
    assert p["succeeded"] + p["failed"] + p.get("skipped", 0) == 20 and p["failed"] > 2
    assert len(stack.results(job_id)) == p["succeeded"] + p["failed"]
    assert [e["job_id"] for e in stack.events()] == [job_id]
    record("threshold crossed by concurrent batches: one end, counts exact", cases=1)


def test_bad_thresholds_are_400(lifecycle, urls):
    [url] = urls("bad", 1)
    for extra in (
        {"tolerated_failure_percentage": 101},
        {"tolerated_failure_percentage": "5"},
        {"tolerated_failure_count": -1},
        {"tolerated_failure_count": 1.5},
    ):
        body = {"count": 1, "visits": [visit([url])], **extra}
        code, error = lifecycle.api("POST", "/api/submit", body=body)
        assert code == 400 and error["error"].startswith(next(iter(extra))), error


# -- 2. pause and resume ------------------------------------------------------------------------------
def test_pause_parks_the_remaining_images_and_resume_finishes_with_exact_counts(lifecycle, image_server, urls):
    stack = lifecycle
    job_id = submit(stack, [visit(urls("pause", 8))])
    first = stack.receive(max_messages=2)
    assert not stack.invoke_process(first)
    in_flight = stack.receive(max_messages=2)  # read before the pause: written and counted after it
    code, body = stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})
    assert code == 200 and body["status"] == "paused", body
    # The batch that read the job before the pause writes its results now (we write them for it).
    tasks = [task_from_message(m["Body"]) for m in in_flight]
    handler_kit.jobs().record_results([ImageResult(t, "succeeded", "2024-01-01T00:00:00.000Z", 1, 1, 4) for t in tasks])
    for m in first + in_flight:  # acknowledged, as the event source does
        stack.sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
    downloads = len(image_server.requests)
    stack.drain()  # the rest are parked: no download, out of the queue
    assert len(image_server.requests) == downloads and stack.queue_depth() == 0
    assert sum(len(tasks) for _, tasks in handler_kit.jobs().parked(job_id)) == 4
    paused = status_of(stack, job_id)
    assert paused["status"] == "paused" and paused["progress"]["processed"] == 4  # results written while pausing
    assert paused["throughput"]["recent_per_min"] == 0 and paused["eta_s"] is None
    assert stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})[0] == 409
    # The stall sweeper never fails a paused job, however long it waits.
    assert stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext()) == {"swept": []}
    code, _ = stack.api("GET", "/api/jobs", query={"status": "paused"})
    assert code == 200
    code, resumed = stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})
    assert code == 200 and resumed["status"] == "ongoing" and resumed["replayed"] == 4, resumed
    assert stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})[0] == 409
    stack.drain()
    done = status_of(stack, job_id)
    assert done["status"] == "completed"
    assert done["progress"] == {"total": 8, "processed": 8, "succeeded": 8, "failed": 0}
    assert sorted(r["index"] for r in stack.results(job_id)) == list(range(8))
    record("pause while batches in flight, then resume: counts exact", cases=1)


def test_a_batch_that_parks_after_the_resume_sends_its_images_back_itself(lifecycle, urls):
    stack = lifecycle
    job_id = submit(stack, [visit(urls("park-race", 3))])
    stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})
    messages = stack.receive()
    jobs = handler_kit.jobs()
    real_park = jobs.park

    def park_then_resume(job, tasks):  # the resume lands between this batch's read and its park write
        key = real_park(job, tasks)
        code, body = stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})
        assert code == 200 and body["replayed"] == 3  # the resume found them: sent once by it
        return key

    jobs.park = park_then_resume
    try:
        assert not stack.invoke_process(messages)
    finally:
        del jobs.park
    stack.drain()
    body = status_of(stack, job_id)
    assert body["status"] == "completed" and body["progress"]["processed"] == 3
    record("resume racing a batch that parks: counts exact", cases=1)


def test_cancel_of_a_paused_job_drops_its_parked_images(lifecycle, urls):
    stack = lifecycle
    job_id = submit(stack, [visit(urls("pause-cancel", 4))])
    stack.api("POST", "/api/jobs/pause", query={"jobid": job_id})
    stack.drain()
    code, body = stack.api("POST", "/api/jobs/cancel", query={"jobid": job_id})
    assert code == 200 and body["progress"] == {"total": 4, "processed": 4, "succeeded": 0, "failed": 0, "cancelled": 4}
    assert not handler_kit.jobs().parked(job_id)
    assert stack.api("POST", "/api/jobs/resume", query={"jobid": job_id})[0] == 409


# -- 3. selective retry -------------------------------------------------------------------------------
def test_retry_takes_only_the_failed_images_the_filter_names(lifecycle, image_server, urls, monkeypatch):
    monkeypatch.setenv("DOWNLOAD_ATTEMPTS", "1")
    lifecycle.reset_caches()
    stack = lifecycle
    [good] = urls("retry-filter", 1)
    gone = image_server.url("/control/retry-filter/gone.jpg")
    busy = image_server.add("/control/retry-filter/busy.jpg", b"busy", "text/plain", status=503)
    job_id = submit(stack, [visit([good, gone, busy]), visit([good], store="NOPE")])
    stack.drain()
    results = {r["index"]: r for r in stack.results(job_id)}
    assert {i: r["error_class"] for i, r in results.items()} == {0: None, 1: "permanent", 2: "transient", 3: "store"}

    assert stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "error_class": "bogus"})[0] == 400
    assert stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "index": "x"})[0] == 400
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "index": "0"})
    assert code == 409 and "matches the filter" in body["error"]
    code, accepted = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "error_class": "transient"})
    assert code == 201 and accepted["total"] == 1, accepted
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": accepted["job_id"]})
    assert code == 409 and "ongoing" in body["error"]  # a running retry is not retried
    stack.drain()
    assert [r["image_url"] for r in stack.results(accepted["job_id"])] == [busy]
    assert stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "error_class": "permanent"})[0] == 409


def test_retry_by_store_ids_and_indexes_takes_exactly_those_failed_images(lifecycle, image_server, urls):
    stack = lifecycle
    [good] = urls("retry-stores", 1)
    gone = [image_server.url(f"/control/retry-stores/gone-{i}.jpg") for i in range(4)]
    visits = [
        visit([good, gone[0], gone[1]]),
        visit([gone[2], good], store="RP00002"),
        visit([gone[3]], store="RP00003"),
    ]
    job_id = submit(stack, visits)
    stack.drain()
    failed = {r["index"]: r["store_id"] for r in stack.results(job_id) if r["status"] == "failed"}
    assert failed == {1: "RP00001", 2: "RP00001", 3: "RP00002", 5: "RP00003"}
    query = {"jobid": job_id, "store_id": "RP00001, RP00003", "index": "2,3,5"}  # both filters narrow the choice
    code, accepted = stack.api("POST", "/api/jobs/retry", query=query)
    assert code == 201 and accepted["total"] == 2, accepted
    stack.drain()
    retried = stack.results(accepted["job_id"])
    assert sorted((r["store_id"], r["image_url"]) for r in retried) == [("RP00001", gone[1]), ("RP00003", gone[3])]
    code, body = stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "store_id": "RP00002"})
    assert code == 409 and accepted["job_id"] in body["error"]  # one retry per job, filtered or not
    too_many = ",".join(f"S{i}" for i in range(101))
    assert stack.api("POST", "/api/jobs/retry", query={"jobid": job_id, "store_id": too_many})[0] == 400


# -- 4. progress you can plan with --------------------------------------------------------------------
def test_status_has_throughput_eta_phases_and_measured_cost(lifecycle, urls):
    stack = lifecycle
    job_id = submit(stack, [visit(urls("plan", 12))])
    running = status_of(stack, job_id)
    assert running["phases"] == {"to_enqueue": 0, "queued": 12, "in_flight": 0, "ended": 0}
    assert running["started_at"] is None and running["eta_s"] is None
    assert not stack.invoke_process(stack.receive())
    stack.pump_streams()
    running = status_of(stack, job_id)
    assert running["started_at"] and running["throughput"]["overall_per_min"] > 0
    assert running["eta_s"] is not None and running["eta_at"]
    phases = running["phases"]
    assert phases["ended"] == 10 and phases["queued"] + phases["in_flight"] == 2
    cost = running["cost"]
    assert cost["gb_s"] > 0 and cost["requests"] == pytest.approx(1.0) and cost["bytes_downloaded"] > 0
    assert cost["usd"] > 0
    stack.drain()
    done = status_of(stack, job_id)
    assert done["eta_s"] == 0 and done["cost"]["requests"] == pytest.approx(2.0, abs=0.01)
    [event] = stack.events()
    assert event["cost"] == done["cost"] and event["started_at"] == done["started_at"]


# -- 5. the results feed ---------------------------------------------------------------------------------
def test_the_feed_hands_out_every_result_once_in_counted_order_across_redelivery(lifecycle, image_server, urls):
    stack = lifecycle
    good = urls("feed", 25)
    job_id = submit(stack, [visit(good[:10]), visit(good[10:], store="RP00002"), visit(good[:2], store="NOPE")])
    page = feed(stack, job_id, limit=5)
    assert [r["index"] for r in page["results"]] == [25, 26]  # the unknown store's, ended at submit
    seen = [r["index"] for r in page["results"]]
    since = page["next_since"]
    while True:
        messages = stack.receive()
        if messages:
            assert not stack.invoke_process(messages)
            assert not stack.invoke_process(messages)  # redelivered: written once, fed once
            stack.pump_streams()
        page = feed(stack, job_id, limit=4, since=since)
        seen += [r["index"] for r in page["results"]]
        since = page["next_since"]
        if page["done"]:
            break
        assert messages or page["results"], "no progress"
    assert sorted(seen) == list(range(27)) and len(seen) == 27
    assert feed(stack, job_id, since=since)["results"] == []
    bad = stack.api("GET", "/api/results", query={"jobid": job_id, "order": "processed", "since": "nope"})
    assert bad[0] == 400
    other = submit(stack, [visit(good[:1])])
    assert stack.api("GET", "/api/results", query={"jobid": other, "order": "processed", "since": since})[0] == 400
    record("results feed: redelivered batches, paged follower", cases=27, lost=0, doubled=0)


# -- 6. progress events ---------------------------------------------------------------------------------
def test_progress_events_go_out_once_each(lifecycle, image_server, urls):
    stack = lifecycle
    good = urls("events", 7)
    job_id = submit(stack, [visit([good[0], image_server.url("/control/events/missing.jpg"), *good[1:]])])
    for _ in range(4):
        assert not stack.invoke_process(stack.receive(max_messages=2))
        stack.pump_streams()
    events = [(e["event"], e.get("percent")) for e in stack.events(everything=True) if e["job_id"] == job_id]
    assert events.count(("job.ended", None)) == 1
    assert sorted(e for e in events if e[0] == "job.progress") == [("job.progress", p) for p in (25, 50, 75)]
    assert events.count(("job.first_failure", None)) == 1
    item = job_item(stack, job_id)
    assert set(item["events_emitted"]["SS"]) == {"progress:25", "progress:50", "progress:75", "first_failure"}


def test_a_job_without_progress_gets_one_stalled_event(lifecycle, urls):
    stack = lifecycle
    job_id = submit(stack, [visit(urls("stalled", 2))])
    ddb = boto3.client("dynamodb")
    ddb.update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET progressed_at = :old",
        ExpressionAttributeValues={":old": {"S": "2000-01-01T00:00:00.000Z"}},
    )
    stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext())  # long idle: swept, not "stalled"
    job2 = submit(stack, [visit(urls("stalled2", 1))])
    from datetime import UTC, datetime, timedelta

    from retail_pulse.domain.clock import format_utc

    idle = format_utc(datetime.now(UTC) - timedelta(seconds=900))
    ddb.update_item(
        TableName=stack.stack.refs["JobsTable"],
        Key={"pk": {"S": f"JOB#{job2}"}, "sk": {"S": "JOB"}},
        UpdateExpression="SET progressed_at = :idle",
        ExpressionAttributeValues={":idle": {"S": idle}},
    )
    out = stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext())
    assert out["stalled"] == [job2]
    assert "stalled" not in stack.stall_sweeper.lambda_handler({"source": "aws.events"}, LambdaContext())
    stalled = [e for e in stack.events(everything=True) if e["event"] == "job.stalled"]
    assert [e["job_id"] for e in stalled] == [job2]


# -- 7. labels -----------------------------------------------------------------------------------------
def test_labels_are_kept_listed_by_and_shown(lifecycle, urls):
    stack = lifecycle
    [url] = urls("labels", 1)
    a = submit(stack, [visit([url])], labels={"team": "north", "run": "a:1"})
    b = submit(stack, [visit([url])], labels={"team": "south"})
    c = submit(stack, [visit([url])], labels={"team": "north"})
    assert status_of(stack, a)["labels"] == {"team": "north", "run": "a:1"}
    _, page = stack.api("GET", "/api/jobs", query={"label": "team:north", "limit": 1})
    assert [j["job_id"] for j in page["jobs"]] == [c] and page["jobs"][0]["labels"] == {"team": "north"}
    _, rest = stack.api("GET", "/api/jobs", query={"label": "team:north", "limit": 1, "next_token": page["next_token"]})
    assert [j["job_id"] for j in rest["jobs"]] == [a]
    _, by_colon = stack.api("GET", "/api/jobs", query={"label": "run:a:1"})
    assert [j["job_id"] for j in by_colon["jobs"]] == [a]
    _, none = stack.api("GET", "/api/jobs", query={"label": "team:east"})
    assert none["jobs"] == [] and b
    _, unlabelled = stack.api("GET", "/api/jobs", query={"limit": 1})
    code, _ = stack.api("GET", "/api/jobs", query={"label": "team:north", "next_token": unlabelled["next_token"]})
    assert code == 400  # a token of another listing
    assert stack.api("GET", "/api/jobs", query={"label": "nocolon"})[0] == 400
    stack.drain()
    notices = {e["job_id"]: e for e in stack.events()}
    assert notices[a]["labels"] == {"team": "north", "run": "a:1"}
    for labels in ({str(i): "v" for i in range(11)}, {"bad key": "v"}, {"k": 1}, ["k"], {"k": "x" * 129}):
        code, error = stack.api("POST", "/api/submit", body={"count": 1, "visits": [visit([url])], "labels": labels})
        assert code == 400 and error["error"].startswith("labels"), error


def test_runs_of_one_job_from_two_stream_shards_take_contiguous_feed_positions(lifecycle, urls, monkeypatch):
    """Shard A reads the job's feed position, shard B's run commits first: A's conditional update
    fails on `feed_seq`, A reads again and commits after B; the feed has no gap and no overlap."""
    stack = lifecycle
    job_id = submit(stack, [visit(urls("shards", 4))])
    jobs = handler_kit.jobs()
    tasks = [task_from_message(m["Body"]) for m in stack.receive()]
    from retail_pulse.logic.counting import tally_of

    results = [ImageResult(t, "succeeded", "2024-01-01T00:00:00.000Z", 1, 1, 4) for t in tasks]
    jobs.record_results(results)  # counted below by hand, as two shards would (the stream is not pumped)
    real = jobs._feed_states
    stale = real([job_id], 1e12)  # what shard A read
    calls = []

    def feed_states_of_shard_a(job_ids, deadline):
        calls.append(1)
        if len(calls) == 1:
            # Shard B counts its run between A's read and A's transaction.
            assert jobs.apply("shard-b", "200", "201", tally_of(results[2:]), 1e12).applied
            return stale
        return real(job_ids, deadline)

    monkeypatch.setattr(jobs, "_feed_states", feed_states_of_shard_a)
    import time as clock

    assert jobs.apply("shard-a", "100", "101", tally_of(results[:2]), clock.monotonic() + 30).applied
    assert len(calls) == 3  # A, B (inside), and A again after its condition failed
    monkeypatch.setattr(jobs, "_feed_states", real)
    indexes = [r.task.index for r in jobs.feed_results(job_id, 0, 100)]
    assert indexes == [t.index for t in tasks[2:]] + [t.index for t in tasks[:2]]
    assert [r.task.index for r in jobs.feed_results(job_id, 3, 100)] == [tasks[1].index]
    job = jobs.read_job(job_id)
    assert (job.succeeded, job.remaining) == (4, 0)
    record("results feed: two stream shards counting one job at once", cases=1, lost=0, doubled=0)
