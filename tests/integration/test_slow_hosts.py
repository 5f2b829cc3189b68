"""A host that drips its image one byte a second inside the read timeout, in a batch with good images
(process_image on moto, a short Lambda timeout): the download fails at the batch's deadline and the
good images are recorded within the invocation, instead of the worker being killed at its timeout
with the whole batch."""

from __future__ import annotations

import time

from harness import LambdaContext, make_image, sqs_event
from reliability import record

from devkit.slow_hosts import DripServer

FUNCTION_TIMEOUT_S = 12  # the invocation's Timeout; process_image keeps 8 s of it for the writes and their hand-over


def test_a_dripping_host_does_not_take_the_good_images_of_its_batch_down(stack, image_server, monkeypatch):
    monkeypatch.setenv("DOWNLOAD_READ_TIMEOUT_S", "10")  # the default: one byte a second never trips it
    monkeypatch.setenv("DOWNLOAD_CONNECT_TIMEOUT_S", "3")
    stack.reset_caches()
    drip = DripServer("body", give_up_s=20)
    try:
        good = [image_server.add(f"/drip-batch/{i}.png", make_image("PNG", 10 + i, 5), "image/png") for i in range(9)]
        urls = [drip.url(), *good]
        job_id = stack.submit_job([{"store_id": "RP00001", "image_url": urls, "visit_time": "2024-03-15T10:00:00Z"}])
        messages = stack.receive(10)
        assert len(messages) == len(urls)
        started = time.monotonic()
        response = stack.process_image.lambda_handler(
            sqs_event(messages, stack.queue_arn), LambdaContext(timeout_s=FUNCTION_TIMEOUT_S)
        )
        elapsed = time.monotonic() - started
    finally:
        drip.close()
    assert elapsed < FUNCTION_TIMEOUT_S - 1, f"the invocation ran {elapsed:.1f} s of its {FUNCTION_TIMEOUT_S} s"
    assert response["batchItemFailures"] == []
    _, page = stack.api("GET", "/api/results", query={"jobid": job_id})
    by_url = {r["image_url"]: r for r in page["results"]}
    assert len(by_url) == len(urls)
    assert by_url[drip.url()]["status"] == "failed"
    assert by_url[drip.url()]["error"].startswith("download timed out"), by_url[drip.url()]
    assert [by_url[u]["perimeter"] for u in good] == [2 * (10 + i + 5) for i in range(9)]
    _, status = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert status["status"] == "failed" and status["progress"]["processed"] == len(urls)
    record("process_image: a dripping host in a batch of good images (12 s Lambda timeout)", len(urls))
