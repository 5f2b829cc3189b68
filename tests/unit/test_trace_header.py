"""No trace header leaves toward image hosts or callback URLs: with tracing on (as on Lambda), every
function's Tracer patches botocore only, never requests or httplib (which would add
`X-Amzn-Trace-Id` to every download and callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devkit.template import ROOT

FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py") if p.parent.name != "web")

PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from devkit.lambda_runtime import load_function
from aws_xray_sdk.core import patcher
load_function(sys.argv[3])
print(json.dumps(sorted(patcher._PATCHED_MODULES)))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_tracing_on_patches_botocore_only(function):
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    # As on Lambda (Powertools turns its tracer off outside Lambda).
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        }
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "layers" / "common"), str(ROOT), function],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    patched = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "botocore" in patched and not patched & {"requests", "httplib", "httpx"}, patched
