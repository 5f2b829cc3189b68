"""Cold start (INIT) of every function: a fresh Python 3.12 per function and run, with the function's
environment as on Lambda, imports the handler module from the built layer (as `sam build` leaves
it: `.aws-sam/build/CommonLayer/python`) and creates its first boto3 client; median of N runs.

As on Lambda: sys.path = function code, layer, runtime (boto3 from a runtime folder, not the
layer); no bytecode is written (Lambda's /opt and /var/task are read-only, so whatever the layer
does not ship precompiled is compiled again on every cold start); tracing on (Tracing: Active
patches the SDK at import). Run under `taskset -c 0` as a stand-in for one vCPU. Lambda gives a
function a share of a vCPU proportional to its memory (1,769 MB = 1 vCPU), so the estimate at the
configured memory is measured x max(1, 1769 / MemorySize): an upper bound, as INIT may get more.
Times are the child's CPU time (`--clock wall` for elapsed): this 2-core machine is shared, and a
core of its own is what the measurement stands in for.

    taskset -c 0 .venv/bin/python benchmarks/cold_start.py [--layer DIR] [--runs 5] [--markdown]
        [--baseline OLD_LAYER OLD_FUNCTIONS]   # a before/after comparison, runs interleaved
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devkit.template import REGION, Stack  # noqa: E402

FULL_VCPU_MB = 1769  # Lambda: at 1,769 MB a function has the equivalent of one vCPU
DEFAULT_LAYER = ROOT / ".aws-sam" / "build" / "CommonLayer" / "python"
RUNTIME_DIR = ROOT / ".aws-sam" / "cold-start-runtime"  # boto3 as the Lambda runtime ships it

# Runs in the fresh interpreter: the handler's import (INIT), then the first client its first
# invocation builds (its adapters create clients on first use, not at import).
PROBE = """
import importlib, json, sys, time
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
started = clock()
module = importlib.import_module(sys.argv[1])
imported = clock()
if sys.argv[2]:
    import boto3
    boto3.client(sys.argv[2])
client = clock()
heavy = [m for m in ("pydantic", "PIL", "aws_lambda_powertools.event_handler.openapi.models", "botocore")
         if m in sys.modules]
print(json.dumps({"import_s": imported - started, "client_s": client - imported, "heavy": heavy}))
"""


def python312() -> str:
    candidates = [shutil.which("python3.12"), *sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))]
    for candidate in filter(None, candidates):
        check = [str(candidate), "-c", "import sys; assert sys.version_info[:2] == (3, 12)"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return str(candidate)
    raise SystemExit("cold_start: Python 3.12 (the functions' runtime) is needed")


def runtime_dir(python: str) -> Path:
    """A folder with boto3 (and its botocore) installed and compiled, as the runtime's /var/runtime."""
    if not (RUNTIME_DIR / "boto3").is_dir():
        pin = next(
            line.strip()
            for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
            if line.startswith("boto3==")
        )
        subprocess.run([python, "-m", "pip", "install", "-q", "--target", str(RUNTIME_DIR), pin], check=True)
    return RUNTIME_DIR


def function_envs() -> dict[str, tuple[dict[str, str], object]]:
    """Each function's environment as deployed (resource names stand-ins), and its spec."""
    stack = Stack()
    for logical in stack.resources:
        stack.refs[logical] = f"rp-{logical}"
        for attr in ("Arn", "QueueName", "TopicName"):
            stack.attrs[(logical, attr)] = f"rp-{logical}"
    return {name: (spec.environment, spec) for name, spec in stack.functions().items()}


def first_client(logical: str, stack: Stack) -> str:
    """The service of a function's first client: DynamoDB for every function with permissions
    (each starts with the jobs table), none for the dashboard (no AWS calls)."""
    return "dynamodb" if stack.resources[logical]["Properties"].get("Policies") else ""


@dataclass(frozen=True)
class Build:
    """What is measured: a built layer's python/ folder and a functions/ folder."""

    layer: Path
    functions: Path = ROOT / "functions"


def _child_env(
    name: str, env: dict[str, str], memory: int, *, code: Path, layer: Path, runtime: Path
) -> dict[str, str]:
    return {
        **{k: str(v) for k, v in env.items()},
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(code), str(layer), str(runtime)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(code),  # Powertools' Tracer stays on only inside Lambda
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "cold-start",
        "AWS_SECRET_ACCESS_KEY": "cold-start",
    }


def _row(name: str, memory: int, samples: list[dict]) -> dict:
    totals = [s["import_s"] + s["client_s"] for s in samples]
    init = statistics.median(totals)
    factor = max(1.0, FULL_VCPU_MB / memory)
    return {
        "function": name,
        "memory_mb": memory,
        "import_s": statistics.median(s["import_s"] for s in samples),
        "client_s": statistics.median(s["client_s"] for s in samples),
        "init_s": init,
        "init_min_s": min(totals),
        "factor": factor,
        "estimated_s": init * factor,
        "heavy": samples[-1]["heavy"],
    }


def measure(python: str, builds: list[Build], runtime: Path, runs: int, clock: str = "cpu") -> list[list[dict]]:
    """One table per build. Runs alternate between the builds (ABAB...), so that a machine shared
    with other work loads every build alike."""
    stack = Stack()
    tables: list[list[dict]] = [[] for _ in builds]
    for name, (env, spec) in function_envs().items():
        module = spec.handler.rsplit(".", 1)[0]
        samples: list[list[dict]] = [[] for _ in builds]
        for _ in range(runs):
            for i, build in enumerate(builds):
                code = build.functions / Path(spec.code_uri).name
                out = subprocess.run(
                    # -S: no site-packages of the machine's Python (only code, layer and runtime).
                    [python, "-S", "-c", PROBE, module, first_client(name, stack), clock],
                    cwd=code, env=_child_env(name, env, spec.memory, code=code, layer=build.layer, runtime=runtime),
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if out.returncode != 0:
                    raise SystemExit(f"{name}: {out.stderr[-3000:]}")
                samples[i].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for i in range(len(builds)):
            tables[i].append(_row(name, spec.memory, samples[i]))
    return tables


def markdown(rows: list[dict]) -> str:
    lines = [
        "| function | memory | import | first client | INIT, 1 core (min) | <= 0.8 s | x memory factor "
        "| INIT at memory, CPU share | heavy modules loaded |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['function'].removesuffix('Function')} | {r['memory_mb']} MB | {r['import_s'] * 1000:.0f} ms "
            f"| {r['client_s'] * 1000:.0f} ms | {r['init_s'] * 1000:.0f} ms ({r['init_min_s'] * 1000:.0f}) "
            f"| {'yes' if r['init_s'] <= 0.8 else 'no'} | {r['factor']:.2f} | {r['estimated_s']:.2f} s "
            f"| {', '.join(r['heavy']) or '-'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layer", type=Path, default=DEFAULT_LAYER, help="built layer's python/ (sam build)")
    parser.add_argument("--functions", type=Path, default=ROOT / "functions", help="the functions/ folder")
    parser.add_argument(
        "--baseline",
        nargs=2,
        type=Path,
        metavar=("LAYER", "FUNCTIONS"),
        help="also measure this build (e.g. an older commit's), runs interleaved with the current one",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables (BENCHMARKS.md)")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu (default): the child's CPU time, what it would take on a core of its own even while "
        "other work shares this machine's; wall: elapsed time",
    )
    args = parser.parse_args()
    builds = [Build(args.layer.resolve(), args.functions.resolve())]
    if args.baseline:
        builds.insert(0, Build(args.baseline[0].resolve(), args.baseline[1].resolve()))
    for build in builds:
        if not build.layer.is_dir():
            raise SystemExit(f"cold_start: no built layer at {build.layer} (sam build)")
    python = python312()
    tables = measure(python, builds, runtime_dir(python), args.runs, args.clock)
    for build, rows in zip(builds, tables, strict=True):
        if args.markdown:
            print(f"\n{build.layer} + {build.functions}:\n\n{markdown(rows)}")
        else:
            print(json.dumps({"layer": str(build.layer), "functions": str(build.functions), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
