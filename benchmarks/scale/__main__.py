"""`make scale` (python -m benchmarks.scale): the scale model of AWS, written to SCALE.md.

Runs the real process_image handler and repository code per batch (and CountResults from the table's
stream, and the dead-letter consumer) in this process against moto with the DynamoDB limits model
(local_stack/dynamodb_limits.py), at modelled Lambda concurrency 20, 100 and 1,000, for today's write
path (f399a74, frozen in baseline/) and the new one, and writes one table per scenario with both side
by side, the targets and the cost per 1,000 images. `--quick`: a smoke run of a few minutes, written
to artifacts/SCALE.quick.md. `--only TEXT`: the runs whose label contains TEXT ("one-job L=1000").
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for entry in (str(ROOT), str(ROOT / "layers" / "common")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from benchmarks.scale.report import figures, render, targets  # noqa: E402
from benchmarks.scale.run import calibrate, run_one  # noqa: E402
from benchmarks.scale.scenarios import (  # noqa: E402
    DOWNLOAD_LATENCY_S,
    FACTORS,
    REAL_STORE_MASTER,
    TABLE_QUOTA_WCU,
    plan,
    write_store_master,
)

FINDINGS = Path(__file__).with_name("findings.md")


def header(
    started: datetime, elapsed_s: float, capacity: dict[str, float], quick: bool, progress: str = ""
) -> list[str]:
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    factors = ", ".join(f"{path} L = {c:,}: F = {f:g}" for (path, c), f in sorted(FACTORS.items()))
    return [
        "# Scale model (`make scale`)",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC; {machine}; the whole run took {elapsed_s / 60:.1f} min."
        + (" **Quick run: a smoke test of the harness, not the scenarios.**" if quick else "")
        + progress,
        "",
        "## What runs",
        "",
        "- **The real code per batch**: process_image's handler (functions/process_image/app.py) and the "
        "repository (layers/common/retail_pulse/adapters/dynamodb), CountResultsFunction's handler fed by "
        "the table's stream through devkit's `StreamPump` (the template's mapping: BatchSize 1,000, batching "
        "window 1 s, tumbling window 60 s so events carry `shardId`, ReportBatchItemFailures, no retry "
        "limit), and the dead-letter consumer; for today's path, f399a74's write path frozen in "
        "`benchmarks/scale/baseline/` (one TransactWriteItems per batch). Jobs are created by submit's "
        "own logic (logic/submit.py).",
        "- **AWS**: moto in this process (`mock_aws`) behind `InProcessLimits`, the DynamoDB limits model, "
        "so DynamoDB refuses what AWS would (commit-window conflicts, per-partition and table budgets with "
        "GSI back-pressure, capacity units). SQS is the local stack's queue model (visibility timeout 360 s, "
        "redrive to the DLQ after 5 receives, ChangeMessageVisibility, fair message groups = jobs) reached "
        "through boto3. Lambda's SQS mapping: L invocations in flight, 10 messages each, failed records "
        "left to their visibility (the scale-up ramp of a new mapping is not modelled). The DLQ consumer "
        "runs at its MaximumConcurrency 2.",
        "- **Stream shards**: moto gives the table one stream shard; DynamoDB one per partition, each with "
        "its own CountResults invocation in flight. The model splits moto's stream by partition key into "
        "as many shards as a table at its write quota has partitions (40,000 / 1,000 WCU/s = 40), one "
        "`StreamPump` each, run in parallel.",
        f"- **Downloads**: an in-memory fetch (through the handler's downloader) returning a 640x480 JPEG "
        f"after {DOWNLOAD_LATENCY_S * 1000:.0f} ms (an image host in the region); then Pillow's measure and "
        "the 0.1-0.4 s processing delay, as in production.",
        "- **Time scale F**: this machine cannot run 1,000 batches at real speed, so the model's clock is "
        "slowed by F: the processing delay, the download latency, the commit window, every per-second "
        "budget (`LimitsConfig.time_scale = F`), the Lambda timeout (60 s x F, and so every deadline the "
        "handlers derive from the remaining time), the SQS visibility timeouts and delays, the stream "
        "mapping's batching window, the retry backoffs (the repository's, botocore's, the stream pump's) "
        "are all stretched by F, so contention (rate x duration) is preserved; modelled rates are wall "
        f"rates x F. F per run: {factors}. When everything waits for a visibility timeout (nothing "
        "running, no visible message), the clock jumps to the next message becoming visible.",
        f"- **Machine**: moto here serves {capacity['put']:,.0f} PutItem/s and {capacity['get']:,.0f} "
        "GetItem/s through the limits model on one thread (measured at the start of this run); each "
        "run's real DynamoDB request rate is in its table ('model health', with the modelled p50 of a "
        "process_image batch: 0.42 s is its floor, the slowest of 10 sleeps plus the download).",
        "",
        "## Parameters",
        "",
        "| what | value | public figure behind it |",
        "| --- | --- | --- |",
        "| transaction commit window | 15 ms | the commit time measured on AWS (transaction-apis.html: conflicts) |",
        "| partition budget | 1,000 WCU/s, 3,000 RCU/s, 1 s burst | warm-throughput-scenarios.html, "
        "bp-partition-key-design.html |",
        f"| table and GSI budget | {TABLE_QUOTA_WCU:,.0f} WCU/s and RCU/s (the default per-table quota, as "
        "the targets assume: a table already at its quota) | ServiceQuotas.html, "
        "pre-warming-on-demand-capacity-mode.html |",
        "| capacity units | 1 WCU per started 1 KB (x2 in transactions), GSI entries charged to the index "
        "partition | CapacityUnitCalculations.html, gsi-throttling.html |",
        "| Lambda | BatchSize 10, Timeout 60 s, 512 MB, processing 0.1-0.4 s per image | template.yaml |",
        "| SQS | VisibilityTimeout 360 s, maxReceiveCount 5 | template.yaml |",
        "",
        "Throughput ceilings at concurrency L: Lambda L x 10 / 0.373 s (the mean of the slowest of 10 "
        "delays); the table: 40,000 WCU/s / WCU per image.",
    ]


def _resized(spec, factor: float | None, jobs: int | None, size: int | None):
    """An experiment's run: F and size overridden; "shortened" unless that is the scenario's own size."""
    jobs, size = jobs or spec.jobs, size or spec.images_per_job
    full = (jobs, size) == (spec.scenario.jobs, spec.scenario.images_per_job)
    return replace(
        spec,
        factor=factor or spec.factor,
        jobs=jobs,
        images_per_job=size,
        shortened="" if full else spec.shortened or "experiment",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--only", help="only the runs whose label contains this text")
    parser.add_argument("--output", help="where to write (default SCALE.md; artifacts/SCALE.quick.md with --quick)")
    parser.add_argument("--factor", type=float, help="override every run's time scale F (experiments)")
    parser.add_argument("--size", help="override every run's size, JOBSxIMAGES (experiments), e.g. 1x5000")
    parser.add_argument("--wall-limit", type=float, default=1800.0, help="seconds a run may take")
    args = parser.parse_args()
    output = Path(args.output or (ROOT / "artifacts" / "SCALE.quick.md" if args.quick else ROOT / "SCALE.md"))
    started, clock = datetime.now(UTC), time.monotonic()
    capacity = calibrate()
    print(f"moto through the limits model: {capacity['put']:,.0f} PutItem/s, {capacity['get']:,.0f} GetItem/s")
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    fifty = write_store_master(work / "StoreMaster50Areas.csv", areas=50, stores=4944)
    real = REAL_STORE_MASTER
    if not real.exists():
        if not args.quick:
            print(f"the real Store Master is missing: {real}", file=sys.stderr)
            return 2
        real = write_store_master(work / "StoreMaster2Areas.csv", areas=2, stores=4944)
    runs = plan(quick=args.quick, only=args.only)
    if args.factor or args.size:
        jobs, size = (int(n) for n in args.size.split("x")) if args.size else (None, None)
        runs = [_resized(spec, args.factor, jobs, size) for spec in runs]
    results = {}
    notes = FINDINGS.read_text().splitlines() if FINDINGS.exists() and not args.quick else []
    output.parent.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(runs, 1):
        print(
            f"[{i}/{len(runs)}] {spec.label}: {spec.jobs} x {spec.images_per_job:,} images, F = {spec.factor:g}",
            flush=True,
        )
        result = run_one(spec, fifty if spec.scenario.store_master == "50 areas" else real, args.wall_limit)
        f = figures(result)
        results[(spec.scenario.key, spec.concurrency, spec.path)] = f
        print(
            f"    {result.outcome}: {f.system_rate:,.0f} images/s (steady {result.steady_rate:,.0f}), "
            f"{f.wcu:.2f} WCU/image, failed {result.verified.failed}, mismatches {len(result.verified.mismatches)}, "
            f"wall {result.wall_s:.0f} s",
            flush=True,
        )
        # Written after every run: an interrupted `make scale` leaves the runs it finished.
        progress = "" if i == len(runs) else f" **Interrupted: {i} of {len(runs)} runs done.**"
        head = header(started, time.monotonic() - clock, capacity, args.quick, progress)
        output.write_text(render(results, head, notes))
    print(f"written to {output}", flush=True)
    return 0 if all(met for *_, met in targets(results)) else 1


if __name__ == "__main__":
    # os._exit: the invocations of a run stopped at its time limit may still be running, and the
    # interpreter would wait for their threads at exit.
    os._exit(main())
