"""SQS event sources as the template declares them: `Enabled: false` maps the queue but polls nothing
(as a disabled event source mapping on AWS), so its messages wait in the queue."""

from __future__ import annotations

import time

import boto3

from devkit.template import Stack, load_template
from local_stack.runner import start_local_stack

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 30}
  PausedQueue:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 30}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Handler: app.lambda_handler
      Runtime: python3.12
      Timeout: 10
      Events:
        Work:
          Type: SQS
          Properties: {Queue: !GetAtt WorkQueue.Arn, BatchSize: 1}
        Paused:
          Type: SQS
          Properties: {Queue: !GetAtt PausedQueue.Arn, BatchSize: 1, Enabled: "false"}
"""
WORKER = "def lambda_handler(event, context):\n    return None\n"


def test_a_disabled_sqs_event_source_is_parsed_as_such(tmp_path):
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    template = load_template(tmp_path / "template.yaml")
    work, paused = Stack(template, root=tmp_path).functions(resolve_environment=False)["Worker"].sqs_sources
    assert (work.queue, work.enabled) == ("WorkQueue", True)
    assert (paused.queue, paused.enabled) == ("PausedQueue", False)


def test_the_local_stack_polls_only_enabled_sources(tmp_path):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(WORKER)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    stack = start_local_stack(tmp_path, "--template", str(tmp_path / "template.yaml"), "--warm", "1")
    try:
        banner = stack.log.read_text()
        sqs = boto3.client(
            "sqs",
            endpoint_url=next(line.split()[-1].rstrip(")") for line in banner.splitlines() if "SQS at" in line),
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - the local stack's made-up credentials
        )
        urls = {name: sqs.get_queue_url(QueueName=f"local-{name}")["QueueUrl"] for name in ("WorkQueue", "PausedQueue")}
        for url in urls.values():
            sqs.send_message(QueueUrl=url, MessageBody="{}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and waiting(sqs, urls["WorkQueue"]):
            time.sleep(0.2)
        time.sleep(1)  # a poller of the paused queue, if there were one, would have taken its message by now

        assert waiting(sqs, urls["WorkQueue"]) == 0
        assert waiting(sqs, urls["PausedQueue"]) == 1
        assert "local-WorkQueue -> Worker" in banner and "local-PausedQueue" not in banner.split("INIT")[1]
    finally:
        stack.stop()


def waiting(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])
