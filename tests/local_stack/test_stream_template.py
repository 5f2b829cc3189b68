"""The template model of DynamoDB stream event sources (devkit/template.py), and their provisioning."""

from __future__ import annotations

import copy

import boto3
import pytest

from devkit.template import Stack, StreamSource, load_template

IMAGE_INSERTS = '{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}'


def with_stream(events: dict, view: str = "NEW_IMAGE") -> dict:
    """template.yaml with a stream on JobsTable and an `Aggregator` function it triggers."""
    template = copy.deepcopy(load_template())
    template["Resources"]["JobsTable"]["Properties"]["StreamSpecification"] = {"StreamViewType": view}
    template["Resources"]["Aggregator"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"CodeUri": "functions/status/", "Handler": "app.lambda_handler", "Events": events},
    }
    return template


def test_dynamodb_events_are_parsed_with_lambdas_defaults():
    stream = {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    events = {
        "Defaults": {"Type": "DynamoDB", "Properties": {"Stream": stream, "StartingPosition": "LATEST"}},
        "Tuned": {
            "Type": "DynamoDB",
            "Properties": {
                "Stream": stream,
                "StartingPosition": "TRIM_HORIZON",
                "BatchSize": 500,
                "MaximumBatchingWindowInSeconds": 2,
                "ParallelizationFactor": 1,
                "MaximumRetryAttempts": 3,
                "BisectBatchOnFunctionError": True,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "FilterCriteria": {"Filters": [{"Pattern": IMAGE_INSERTS}]},
                "Enabled": "false",
            },
        },
    }
    spec = Stack(with_stream(events)).functions(resolve_environment=False)["Aggregator"]
    defaults, tuned = spec.stream_sources
    assert defaults == StreamSource(function="Aggregator", table="JobsTable", starting_position="LATEST")
    assert (defaults.batch_size, defaults.batching_window_s, defaults.max_retry_attempts) == (100, 0.0, -1)
    assert not defaults.report_item_failures and not defaults.bisect_on_error and defaults.enabled
    assert tuned == StreamSource(
        function="Aggregator",
        table="JobsTable",
        starting_position="TRIM_HORIZON",
        batch_size=500,
        batching_window_s=2.0,
        parallelization_factor=1,
        max_retry_attempts=3,
        bisect_on_error=True,
        report_item_failures=True,
        filters=[{"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "IMG#"}]}}}}],
        enabled=False,
    )


def test_a_stream_must_be_named_by_getatt():
    events = {"S": {"Type": "DynamoDB", "Properties": {"Stream": "arn:aws:dynamodb:...", "StartingPosition": "LATEST"}}}
    with pytest.raises(ValueError, match="StreamArn"):
        Stack(with_stream(events)).functions(resolve_environment=False)


def test_provisioning_enables_the_stream_and_resolves_its_arn(aws_env):
    from moto import mock_aws

    with mock_aws():
        ddb = boto3.client("dynamodb")
        stack = Stack(with_stream({}, view="NEW_AND_OLD_IMAGES")).provision(ddb, boto3.client("sqs"))
        table = ddb.describe_table(TableName=stack.refs["JobsTable"])["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        arn = stack.resolve({"Fn::GetAtt": ["JobsTable", "StreamArn"]})
        assert arn == table["LatestStreamArn"] and arn.startswith(stack.attrs[("JobsTable", "Arn")] + "/stream/")


def without_streams() -> dict:
    """template.yaml without any table stream or stream event source (as it was before them)."""
    template = copy.deepcopy(load_template())
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        properties.pop("StreamSpecification", None)
        events = properties.get("Events", {})
        for name in [n for n, e in events.items() if e["Type"] == "DynamoDB"]:
            del events[name]
    return template


@pytest.mark.parametrize("stack_template", [without_streams()])
def test_without_stream_sources_the_fixture_pumps_nothing(stack):
    assert ("JobsTable", "StreamArn") not in stack.stack.attrs
    assert all(not f.stream_sources for f in stack.stack.functions(resolve_environment=False).values())
    assert stack.streams.pumps == {}
    assert stack.pump_streams() == 0
