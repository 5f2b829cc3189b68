"""`make bench`: the product's speed and cost targets as measured figures (ratios against the targets).

1. The real handlers in-process against moto with the AWS limits model: handler time per batch,
   WCU/RCU per image (process_image and count_results, fed by the table's stream), requests.
2. The local stack (a subprocess) over HTTP with images from a local HTTP server: submit and status
   at scale, a small job behind a big one, a job with the AWS limits model against the same job on
   the code before the new write path (commit f399a74, a git worktree), 50 pollers beside a job,
   and end-to-end throughput against the ideal at several concurrencies.

Prints one table and writes BENCHMARKS.md (its top part and cost section; other sections are kept).
Exits 1 when a target is missed or could not be measured. The code is in benchmarks/benchkit/.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchkit import ROOT
from benchkit import measures as m
from benchkit.report import cost_section, merge_report, table
from benchkit.scaffolding import ImageHost, log
from benchkit.stacks import BASELINE_COMMIT

FULL = {"in_process": (1000, 40), "big": 50_000, "job": 5_000, "rounds": 2}
QUICK = {"in_process": (200, 20), "big": 5_000, "job": 2_000, "rounds": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller jobs, same targets (a few minutes)")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument(
        "--concurrency", type=int, nargs="*", help="end-to-end levels (default 5 10 20; quick: 5 20, no extra stack)"
    )
    parser.add_argument(
        "--rounds", type=int, help="alternated rounds of the limits comparison, best of each kept (default 2; quick: 1)"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    job = sizes["job"]
    concurrencies = args.concurrency or ([5, m.LIMITS_CONCURRENCY] if args.quick else [5, 10, m.LIMITS_CONCURRENCY])
    host = ImageHost()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    log(f"local stack logs in {log_dir} (removed when the run ends normally)")
    try:
        rows, figures = m.in_process(host, *sizes["in_process"])
        rows += m.local_stack_scale(host, log_dir, sizes["big"])
        limit_rows, run_notes, plain = m.limits_and_pollers(host, log_dir, job, args.rounds or sizes["rounds"])
        e2e_rows, e2e_notes = m.end_to_end(host, log_dir, job, concurrencies, {m.LIMITS_CONCURRENCY: plain})
        rows += e2e_rows + limit_rows
    finally:
        host.close()
    shutil.rmtree(log_dir, ignore_errors=True)

    text = table(rows)
    print(text)
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    report = [
        "# Benchmarks",
        "",
        f"`make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine}; load average {load:.1f} at the end."
        + (
            " **Quick run** (`--quick`: smaller jobs, one round of the limits comparison, same targets)."
            if args.quick
            else ""
        ),
        "Ratio: measured / target (for throughput: target / measured); <= 1 meets the target.",
        "",
        text,
        "",
        f"Jobs at L = {m.LIMITS_CONCURRENCY} (this checkout with the AWS limits model, with and without "
        f"{m.POLLERS} pollers, alternated with commit {BASELINE_COMMIT}, whose local stack has no limits model):",
        "",
        *run_notes,
        "",
        "Other concurrency levels (batches in flight):",
        "",
        *e2e_notes,
        "",
        *cost_section(figures),
    ]
    output = Path(args.output)
    previous = output.read_text() if output.exists() else ""
    output.write_text(merge_report("\n".join(report), previous))
    log(f"written to {output}")
    missed = [r.metric for r in rows if not r.met]
    for metric in missed:
        log(f"target not met or not measured: {metric}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
