"""The `stack` fixture's `pump_streams()`: a template's stream-triggered function run in-process."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from devkit.template import load_template

RECORDER = """
import json, os

def lambda_handler(event, context):
    with open(os.environ["RECORDS_FILE"], "a") as out:
        for record in event["Records"]:
            out.write(json.dumps(record) + "\\n")
    return {"batchItemFailures": []}
"""


@pytest.fixture
def stack_template(tmp_path):
    """template.yaml plus a stream on JobsTable and a `Recorder` function fed its image inserts."""
    code = tmp_path / "recorder"
    code.mkdir()
    (code / "app.py").write_text(RECORDER)
    template = copy.deepcopy(load_template())
    template["Resources"]["JobsTable"]["Properties"]["StreamSpecification"] = {"StreamViewType": "NEW_IMAGE"}
    # The recorder takes the stream's place of the counting function (one consumer: the local
    # stream drops what its consumer has read).
    del template["Resources"]["CountResultsFunction"]
    pattern = {"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}
    template["Resources"]["Recorder"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": str(code),
            "Handler": "app.lambda_handler",
            "Environment": {"Variables": {"RECORDS_FILE": str(tmp_path / "records.jsonl")}},
            "Events": {
                "Results": {
                    "Type": "DynamoDB",
                    "Properties": {
                        "Stream": {"Fn::GetAtt": ["JobsTable", "StreamArn"]},
                        "StartingPosition": "LATEST",
                        "BatchSize": 4,
                        "MaximumBatchingWindowInSeconds": 5,  # pump_streams does not wait for it
                        "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        "FilterCriteria": {"Filters": [{"Pattern": json.dumps(pattern)}]},
                    },
                }
            },
        },
    }
    return template


def recorded(tmp_path) -> list[dict]:
    path = tmp_path / "records.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_pump_streams_runs_the_functions_code_on_its_records(stack, tmp_path):
    ddb = boto3.client("dynamodb")
    table = stack.stack.refs["JobsTable"]
    for i in range(10):
        ddb.put_item(TableName=table, Item={"pk": {"S": "JOB#1"}, "sk": {"S": f"IMG#{i:05d}"}})
    ddb.put_item(TableName=table, Item={"pk": {"S": "JOB#1"}, "sk": {"S": "JOB"}})
    assert stack.pump_streams() == 10
    records = recorded(tmp_path)
    assert [r["dynamodb"]["Keys"]["sk"]["S"] for r in records] == [f"IMG#{i:05d}" for i in range(10)]
    assert {r["eventSourceARN"] for r in records} == {stack.stack.attrs[("JobsTable", "StreamArn")]}
    [pump] = stack.streams.pumps["Recorder"]
    assert pump.invocations == 3 and pump.records_filtered == 1  # batches of 4, 4, 2
    assert stack.pump_streams("Recorder") == 0


def test_a_test_may_swap_the_handler_and_see_failures(stack):
    calls = []

    def flaky(event, context):
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("first call fails")

    stack.stream_handlers["Recorder"] = flaky
    ddb = boto3.client("dynamodb")
    ddb.put_item(TableName=stack.stack.refs["JobsTable"], Item={"pk": {"S": "JOB#1"}, "sk": {"S": "IMG#00001"}})
    assert stack.pump_streams() == 0  # the batch failed: pump_streams stops there
    [pump] = stack.streams.pumps["Recorder"]
    assert pump.last_error["errorType"] == "RuntimeError"
    assert stack.pump_streams() == 1 and calls == [1, 1]
    with pytest.raises(KeyError):
        stack.pump_streams("NoSuchFunction")
