"""Settings of `make run` from the user's environment: local defaults only where nothing was set,
and the callback signing secret made up (and printed) when none is given."""

from __future__ import annotations

import re

import pytest
from harness import make_image

from local_stack.runner import start_local_stack


@pytest.fixture(scope="module")
def strict_stack(tmp_path_factory):
    """As `ALLOW_PRIVATE_IMAGE_HOSTS=false CALLBACK_SIGNING_SECRET= make run` would start it."""
    stack = start_local_stack(
        tmp_path_factory.mktemp("strict-stack"),
        "--warm",
        "1",
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0.02",
        env={"ALLOW_PRIVATE_IMAGE_HOSTS": "false", "CALLBACK_SIGNING_SECRET": "", "DOWNLOAD_ATTEMPTS": "1"},
    )
    yield stack
    stack.stop()


def test_the_users_false_wins_over_the_local_default(strict_stack, image_server):
    url = image_server.add("/settings/a.jpg", make_image("JPEG", 64, 48))
    job_id = strict_stack.submit([{"store_id": "RP00001", "image_url": [url], "visit_time": "2024-03-15T10:00:00Z"}])
    job = strict_stack.wait(job_id, timeout=30)
    # Downloading from 127.0.0.1 is refused, as in the cloud (it used to succeed: local overrides won).
    assert job["status"] == "failed", job
    assert "refused" in job["error"][0]["error"], job["error"]


def test_an_empty_signing_secret_refuses_callback_urls_and_none_is_made_up(strict_stack, image_server):
    body = {
        "count": 1,
        "visits": [
            {"store_id": "RP00001", "image_url": ["https://x.example/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"}
        ],
        "callback_url": "https://hooks.example.com/done",
    }
    response = strict_stack.post("/api/submit", body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("callback_url: callbacks are disabled")
    assert "CALLBACK_SIGNING_SECRET=" not in strict_stack.log.read_text()


def test_a_secret_is_made_up_and_printed_when_none_is_given(keyed_stack):
    # keyed_stack (tests/e2e/conftest.py) is started without any signing secret.
    banner = keyed_stack.log.read_text()
    found = re.search(r"derived from CALLBACK_SIGNING_SECRET=(\S+)", banner)
    assert found and len(found.group(1)) >= 24, banner[:2000]
    assert re.search(r"^INIT +\w+ \d+ ms", banner, re.MULTILINE), banner[:2000]


def test_a_visibility_timeout_below_the_consumers_timeout_is_refused_as_lambda_does(tmp_path):
    # A batch still running past the queue's visibility timeout would be delivered again, its receive
    # count spent twice: Lambda refuses such a mapping, and so does the local stack (it used to run it).
    with pytest.raises(RuntimeError) as exited:
        start_local_stack(tmp_path, "--visibility-timeout", "2", "--warm", "1", startup_timeout=60)
    assert "InvalidParameterValueException: Queue visibility timeout: 2 seconds is less than Function timeout" in str(
        exited.value
    )
