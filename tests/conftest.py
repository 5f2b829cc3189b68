"""Fixtures every test folder shares: moto resources built from template.yaml with the handlers
loaded like Lambda loads them (`stack`, `lifecycle`), and an HTTP server of generated images.
Helpers are in harness.py. Each test gets the marker of its folder (unit, integration, local_stack,
e2e, infrastructure): `make test-fast` runs unit and integration."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from harness import SIGNING_SECRET, Handlers, ImageServer, topic_inbox

from devkit.template import Stack
from local_stack import moto_patches

# The moto the local stack runs (item-level transaction rollback, streams that drop what was read).
moto_patches.install()

REACHES = ("unit", "integration", "local_stack", "e2e", "infrastructure")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).parts
        reach = next((part for part in reversed(parts) if part in REACHES), None)
        if reach:
            item.add_marker(getattr(pytest.mark, reach))


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def stack_template() -> dict | None:
    """The template the `stack` fixture provisions: None is template.yaml. A test module may override
    this fixture with a variant built in memory (e.g. a table stream and a function it triggers)."""
    return None


@pytest.fixture
def stack(aws_env, monkeypatch, stack_template):
    """moto resources provisioned from template.yaml; the functions' environment from it too."""
    from moto import mock_aws

    with mock_aws():
        sqs = boto3.client("sqs")
        built = Stack(stack_template).provision(
            boto3.client("dynamodb"),
            sqs,
            boto3.client("s3"),
            boto3.client("sns"),
            secretsmanager=boto3.client("secretsmanager"),
            secret_values={"CallbackSigningSecret": SIGNING_SECRET},
        )
        env = {}
        for spec in built.functions().values():
            env.update(spec.environment)
        env.update(
            {
                "PROCESSING_DELAY_MIN_S": "0",
                "PROCESSING_DELAY_MAX_S": "0.01",
                # moto is not thread-safe in-process (concurrent writes race its stream records): the
                # parallel send and write paths are covered by the local stack.
                "ENQUEUE_CONCURRENCY": "1",
                "RESULT_WRITE_CONCURRENCY": "1",
                "DOWNLOAD_READ_TIMEOUT_S": "1",
                # The image server of these tests listens on 127.0.0.1, which the cloud refuses (SSRF).
                "ALLOW_PRIVATE_IMAGE_HOSTS": "true",
                # Callbacks off unless a test turns them on (the `lifecycle` fixture): a submit with a
                # callback_url is then refused, as on a deployment without a signing key.
                "CALLBACK_SIGNING_SECRET_ARN": "",
            }
        )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        handlers = Handlers(built, sqs)
        handlers.reset_caches()
        yield handlers
        handlers.reset_caches()


@pytest.fixture
def lifecycle(stack, monkeypatch):
    """The stack with a signing secret, and an SQS queue subscribed to the job events topic."""
    # The template's secret (SIGNING_SECRET in moto's Secrets Manager), read by the notifier.
    monkeypatch.setenv("CALLBACK_SIGNING_SECRET_ARN", stack.stack.refs["CallbackSigningSecret"])
    stack.reset_caches()
    sqs = boto3.client("sqs")
    inbox = topic_inbox(stack.stack.refs["JobEventsTopic"], "job-events-inbox")

    def events(everything: bool = False) -> list[dict]:
        """Completion notices (`job.ended`) received since the last call; `everything`: progress events too."""
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for m in got:
                body = json.loads(m["Body"])
                if everything or body.get("event") == "job.ended":
                    out.append(body)
                sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])

    stack.events = events
    return stack


@pytest.fixture(scope="session")
def image_server():
    server = ImageServer()
    yield server
    server.close()


def pytest_sessionfinish(session, exitstatus):
    """RELIABILITY.md from what the fault and attack tests recorded (tests/reliability.py)."""
    import reliability

    reliability.write_report()
