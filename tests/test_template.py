"""The template itself: lint-clean, and the properties the design depends on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from local_stack.template import TEMPLATE, Stack


def test_cfn_lint_is_clean():
    cfn_lint = shutil.which("cfn-lint") or str(Path(sys.executable).parent / "cfn-lint")
    run = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_queue_event_source_and_redrive():
    stack = Stack()
    queue = stack.resources["ImageQueue"]["Properties"]
    functions = stack.functions(resolve_environment=False)
    process = functions["ProcessImageFunction"]
    assert queue["VisibilityTimeout"] >= 6 * process.timeout
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    [source] = process.sqs_sources
    assert (source.queue, source.batch_size, source.report_item_failures) == ("ImageQueue", 10, True)
    scaling = stack.resources["ProcessImageFunction"]["Properties"]["Events"]["Images"]["Properties"]["ScalingConfig"]
    assert scaling["MaximumConcurrency"] == {"Ref": "ProcessImageMaxConcurrency"}


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
    }
    layer = stack.resources["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert stack.template["Globals"]["Function"]["Runtime"] == "python3.12"
    table = stack.resources["JobsTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
