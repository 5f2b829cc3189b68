"""A table stream driven into a function by a started local stack (moto server, worker processes)."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from local_stack.runner import start_local_stack

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  EventsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      StreamSpecification:
        StreamViewType: NEW_IMAGE
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: recorder/
      Handler: app.lambda_handler
      Runtime: python3.12
      Timeout: 10
      Environment:
        Variables:
          OUT_DIR: "OUT_DIR"
      Events:
        Results:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt EventsTable.StreamArn
            StartingPosition: LATEST
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 0.2
            FunctionResponseTypes: [ReportBatchItemFailures]
            FilterCriteria:
              Filters:
                - Pattern: '{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}'
"""

# Fails its first batch that holds IMG#00007 (once): the stack must retry it, in order.
RECORDER = """
import json, os, pathlib

def lambda_handler(event, context):
    out = pathlib.Path(os.environ["OUT_DIR"])
    keys = [r["dynamodb"]["Keys"]["sk"]["S"] for r in event["Records"]]
    if "IMG#00007" in keys and not (out / "failed-once").exists():
        (out / "failed-once").touch()
        raise RuntimeError("transient failure")
    with open(out / "records.jsonl", "a") as f:
        for record in event["Records"]:
            f.write(json.dumps(record) + "\\n")
    return {"batchItemFailures": []}
"""


@pytest.fixture
def streams_stack(tmp_path):
    (tmp_path / "recorder").mkdir()
    (tmp_path / "recorder" / "app.py").write_text(RECORDER)
    (tmp_path / "template.yaml").write_text(TEMPLATE.replace('"OUT_DIR"', f'"{tmp_path}"'))
    stack = start_local_stack(tmp_path, "--template", str(tmp_path / "template.yaml"), "--warm", "1")
    yield stack
    stack.stop()


def test_the_local_stack_delivers_a_table_stream_to_its_function(streams_stack, tmp_path):
    assert "DynamoDB stream EventsTable -> Recorder (batch 5, window 0.2 s)" in streams_stack.log.read_text()
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=streams_stack.aws_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint takes any
    )
    for i in range(20):
        ddb.put_item(TableName="local-EventsTable", Item={"pk": {"S": "JOB#1"}, "sk": {"S": f"IMG#{i:05d}"}})
    ddb.put_item(TableName="local-EventsTable", Item={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})
    out = tmp_path / "records.jsonl"
    deadline = time.monotonic() + 30
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        if len(records) >= 20:
            break
        time.sleep(0.1)
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in records] == [f"IMG#{i:05d}" for i in range(20)]
    assert (tmp_path / "failed-once").exists()  # the failing batch was retried, nothing skipped
    assert {(r["eventName"], r["eventSource"]) for r in records} == {("INSERT", "aws:dynamodb")}
    assert {r["eventSourceARN"] for r in records} == {
        ddb.describe_table(TableName="local-EventsTable")["Table"]["LatestStreamArn"]
    }
