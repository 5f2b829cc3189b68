"""The template itself: lint-clean, and the properties the design depends on."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.template import ROOT, TEMPLATE, Stack
from retail_pulse.domain.quota import EPOCH_S, STALE_CLAIM_S
from tools import openapi


def test_cfn_lint_is_clean():
    # The pinned cfn-lint of this venv first (as `make lint` runs it); another on PATH may be older.
    pinned = Path(sys.executable).parent / "cfn-lint"
    cfn_lint = str(pinned) if pinned.exists() else shutil.which("cfn-lint")
    run = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_queue_event_source_and_redrive():
    stack = Stack()
    queue = stack.resources["ImageQueue"]["Properties"]
    functions = stack.functions(resolve_environment=False)
    process = functions["ProcessImageFunction"]
    assert queue["VisibilityTimeout"] >= 6 * process.timeout
    # A quota claim older than STALE_CLAIM_S is taken back as a dead invocation's (domain/quota.py).
    assert 2 * process.timeout + EPOCH_S <= STALE_CLAIM_S
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    [source] = process.sqs_sources
    assert (source.queue, source.batch_size, source.report_item_failures) == ("ImageQueue", 10, True)
    scaling = stack.resources["ProcessImageFunction"]["Properties"]["Events"]["Images"]["Properties"]["ScalingConfig"]
    assert scaling["MaximumConcurrency"] == {"Ref": "ProcessImageMaxConcurrency"}
    assert source.enabled
    # ImageProcessingEnabled=false pauses every job: the mapping exists, disabled.
    [paused] = (
        Stack(parameters={"ImageProcessingEnabled": "false"})
        .functions(resolve_environment=False)["ProcessImageFunction"]
        .sqs_sources
    )
    assert (paused.queue, paused.enabled) == ("ImageQueue", False)


def test_routes_and_layer():
    stack = Stack()
    routes = {
        (r.method, r.path): r.function for f in stack.functions(resolve_environment=False).values() for r in f.routes
    }
    assert routes == {
        ("POST", "/api/submit"): "SubmitFunction",
        ("GET", "/api/status"): "StatusFunction",
        ("GET", "/api/results"): "StatusFunction",
        ("GET", "/api/health"): "StatusFunction",
        ("GET", "/api/openapi.json"): "StatusFunction",
        ("GET", "/api/docs"): "StatusFunction",
        ("GET", "/api/docs/swagger-ui-bundle.min.js"): "StatusFunction",
        ("GET", "/api/docs/swagger-ui.min.css"): "StatusFunction",
        ("GET", "/api/visits"): "ReportsFunction",
        ("GET", "/api/stores"): "ReportsFunction",
        ("GET", "/api/reports/areas"): "ReportsFunction",
        ("GET", "/api/reports/stores"): "ReportsFunction",
        ("GET", "/api/jobs"): "JobsFunction",
        ("GET", "/api/callbacks/key"): "JobsFunction",
        ("POST", "/api/jobs/cancel"): "JobsFunction",
        ("POST", "/api/jobs/retry"): "JobsFunction",
        ("POST", "/api/jobs/pause"): "JobsFunction",
        ("POST", "/api/jobs/resume"): "JobsFunction",
        ("POST", "/api/uploads"): "FilesFunction",
        ("POST", "/api/results/export"): "FilesFunction",
        ("GET", "/api/results/export"): "FilesFunction",
        ("GET", "/"): "WebFunction",
        ("GET", "/assets/{file}"): "WebFunction",
    }
    layer = stack.resources["CommonLayer"]
    # layers/common/Makefile: bytecode compiled for the runtime, no second boto3/botocore (cold start).
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    makefile = (ROOT / layer["Properties"]["ContentUri"] / "Makefile").read_text()
    assert "build-CommonLayer:" in makefile and "compileall" in makefile and "unchecked-hash" in makefile
    assert "botocore" in makefile.split("RUNTIME_PROVIDED :=", 1)[1].splitlines()[0]
    assert stack.template["Globals"]["Function"]["Runtime"] == "python3.12"
    table = stack.resources["JobsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_every_function_and_queue_has_alarms_that_notify_the_topic():
    stack = Stack()
    watched = set()
    for alarm in stack.of_type("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], props
        dimension = props["Dimensions"][0]["Value"]
        if isinstance(dimension, str):  # our own metrics: the service dimension Powertools sets
            target = dimension
        else:
            target = dimension.get("Ref") or dimension.get("Fn::GetAtt", [None])[0] or dimension.get("Fn::Sub")
        namespace = props["Namespace"] if isinstance(props["Namespace"], str) else props["Namespace"]["Fn::Sub"]
        watched.add((namespace, props["MetricName"], target))
    for function in stack.functions(resolve_environment=False):
        assert ("AWS/Lambda", "Errors", function) in watched
        assert ("AWS/Lambda", "Throttles", function) in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "ImageDeadLetterQueue") in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "FanOutDeadLetterQueue") in watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "ExportDeadLetterQueue") in watched
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "ImageQueue") in watched
    # The write path: counting lag, DynamoDB refusals the functions met, images that reached the DLQ.
    assert ("AWS/Lambda", "IteratorAge", "CountResultsFunction") in watched
    for metric in ("StorageThrottles", "StorageConflicts", "StorageRefused", "ImagesDeadLettered"):
        assert ("RetailPulse/${Stage}", metric, "retail-pulse") in watched, metric
    # The 5xx alarm selects the API by the name the template gives it.
    assert ("AWS/ApiGateway", "5XXError", stack.resources["Api"]["Properties"]["Name"]["Fn::Sub"]) in watched
    subscription = stack.resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


def test_dashboard_is_valid_json_and_shows_the_custom_metrics():
    stack = Stack()
    env = stack.template["Globals"]["Function"]["Environment"]["Variables"]
    namespace = env["POWERTOOLS_METRICS_NAMESPACE"]["Fn::Sub"]
    widgets = json.loads(stack.resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])["widgets"]
    custom = [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"] if m[0] == namespace]
    assert {m[1] for m in custom} == {
        "ImagesSucceeded",
        "ImagesFailed",
        "DownloadTime",
        "ImageBytes",
        "JobDuration",
        "SubmitSize",
        "ResultsCounted",
        "StorageThrottles",
        "StorageConflicts",
        "StorageRefused",
        "ImagesDeadLettered",
        "ResultsHandedToDeadLetters",
        "ImagesEnqueued",
        "ManifestsRefused",
        "ResultsExported",
    }
    # Powertools gives every metric one dimension, the service: a graph without it shows nothing.
    assert all(m[2:4] == ["service", env["POWERTOOLS_SERVICE_NAME"]] for m in custom)
    lambda_graphs = [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]]
    for function in stack.functions(resolve_environment=False):
        assert ["AWS/Lambda", "Errors", "FunctionName", f"${{{function}}}"] in lambda_graphs, function


def test_openapi_document_covers_exactly_the_template_routes():
    stack = Stack()
    functions = stack.functions(resolve_environment=False).values()
    routes = {(r.method, r.path) for f in functions for r in f.routes if openapi.is_api_path(r.path)}
    document = json.loads((ROOT / "openapi.json").read_text())
    assert {(method.upper(), path) for path, ops in document["paths"].items() for method in ops} == routes


def test_fan_out_and_export_queues_fit_their_functions():
    """A queue's visibility outlasts its consumer (a crashed run's message comes back only after it),
    the fan-out's maxReceiveCount is the one it gives up at, and the presigned URLs' signer may do
    no more than the URLs are for."""
    stack = Stack()
    functions = stack.functions(resolve_environment=False)
    for function, queue in (("FanOutFunction", "FanOutQueue"), ("ExportResultsFunction", "ExportQueue")):
        props = stack.resources[queue]["Properties"]
        assert props["VisibilityTimeout"] >= functions[function].timeout
        [source] = functions[function].sqs_sources
        assert (source.queue, source.batch_size, source.report_item_failures) == (queue, 1, True)
    redrive = stack.resources["FanOutQueue"]["Properties"]["RedrivePolicy"]
    assert str(redrive["maxReceiveCount"]) == functions["FanOutFunction"].environment["FAN_OUT_MAX_RECEIVES"]
    export_redrive = stack.resources["ExportQueue"]["Properties"]["RedrivePolicy"]
    from devkit.lambda_runtime import load_function

    assert export_redrive["maxReceiveCount"] == load_function("export_results", prefix="infra").MAX_RECEIVES
    statements = stack.resources["FilesFunction"]["Properties"]["Policies"][0]["Statement"]
    s3 = {tuple(st["Action"]): st["Resource"]["Fn::Sub"] for st in statements if st["Action"][0].startswith("s3:")}
    assert s3 == {("s3:PutObject",): "${DataBucket.Arn}/uploads/*", ("s3:GetObject",): "${DataBucket.Arn}/exports/*"}
    rules = {r["Id"]: r for r in stack.resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireUploads"]["ExpirationInDays"] == {"Ref": "JobTtlDays"}  # a manifest is its job's image list


@pytest.mark.parametrize("function", ["submit", "status", "jobs", "files", "reports"])
def test_api_functions_build_no_openapi_models_at_init(function):
    """Cold start: the OpenAPI bodies (pydantic models, 100-150 ms of INIT) are built only with the
    document (retail_pulse/api/route_docs.py), and submit, which validates no parameter, loads no
    pydantic at all. A fresh interpreter imports the handler as Lambda's INIT would."""
    code = ROOT / "functions" / function
    probe = "import sys, app; print(sorted(m for m in ('retail_pulse.api.schema', 'pydantic') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=code,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(code), str(ROOT / "layers" / "common")])},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert "retail_pulse.api.schema" not in loaded
    if function == "submit":
        assert loaded == []
