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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchkit import ROOT
from benchkit import measures as m
from benchkit.report import LoadSampler, Row, cost_section, merge_report, table
from benchkit.scaffolding import ImageHost, log
from benchkit.stacks import BASELINE_COMMIT

FULL = {"in_process": (1000, 40), "big": 50_000, "job": 5_000, "rounds": 2}
QUICK = {"in_process": (200, 20), "big": 5_000, "job": 2_000, "rounds": 1}


def guarded(what: str, measure: Callable[[], list[Row]]) -> list[Row]:
    """The measure's rows, or one row "not measured" with the reason when it fails (a stack that does
    not start on a loaded machine): the other measures still run and the file is still written."""
    try:
        return measure()
    except Exception as exc:
        log(f"{what} failed: {exc}")
        return [Row(what, None, 1.0, "", note="failed: " + str(exc)[:300].replace("\n", " "))]


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
    parser.add_argument("--job", type=int, help="images of the timed local-stack jobs (default 5,000; quick: 2,000)")
    parser.add_argument("--big", type=int, help="images of the big job of the scale measures (50,000; quick: 5,000)")
    parser.add_argument("--in-process", type=int, help="images of the in-process run (1,000; quick: 200)")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    in_process_images, batches_timed = sizes["in_process"]
    if args.in_process:
        in_process_images, batches_timed = args.in_process, min(batches_timed, args.in_process // 10)
    job, big = args.job or sizes["job"], args.big or sizes["big"]
    reduced = args.quick or any((args.job, args.big, args.in_process, args.rounds == 1))
    concurrencies = args.concurrency or ([5, m.LIMITS_CONCURRENCY] if args.quick else [5, 10, m.LIMITS_CONCURRENCY])
    host = ImageHost()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    log(f"local stack logs in {log_dir} (removed when every measure ran)")
    started = time.monotonic()
    try:
        with LoadSampler() as load:
            rows, figures = m.in_process(host, in_process_images, batches_timed)
            rows += guarded(
                f"local stack: submit and status at {big:,} images", lambda: m.local_stack_scale(host, log_dir, big)
            )
            limit_rows, run_notes, plain = m.limits_and_pollers(host, log_dir, job, args.rounds or sizes["rounds"])
            e2e_notes: list[str] = []

            def e2e() -> list[Row]:
                e2e_rows, notes = m.end_to_end(host, log_dir, job, concurrencies, {m.LIMITS_CONCURRENCY: plain})
                e2e_notes.extend(notes)
                return e2e_rows

            e2e_rows = guarded(f"end to end, {job:,} images, L = {' '.join(map(str, concurrencies))}", e2e)
            rows += e2e_rows + limit_rows
    finally:
        host.close()
    if any(r.measured is None for r in rows):
        log(f"local stack logs kept in {log_dir} (a measure failed)")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60

    text = table(rows)
    print(text)
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    command = " ".join(["make bench", *(["BENCH_ARGS='" + " ".join(sys.argv[1:]) + "'"] if sys.argv[1:] else [])])
    report = [
        "# Benchmarks",
        "",
        f"`{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({minutes:.0f} min); {machine}; "
        f"{load.describe()} during the run.",
        *(
            [
                "**Reduced run** (smaller jobs or one round, same targets): a smoke test of the benchmark, "
                "not the figures of record."
            ]
            if reduced
            else []
        ),
        *(
            [
                "**Measured under contention** (the load average exceeded the cores: other work shared the "
                "machine): every figure is indicative. Ratios of runs alternated on the same stack and machine "
                "(limits on vs off, pollers vs none) hold up best; absolute times and ratios to the ideal suffer most."
            ]
            if load.contended()
            else []
        ),
        "Ratio: measured / target (for throughput: target / measured); <= 1 meets the target.",
        "",
        text,
        "",
        f"Jobs at L = {m.LIMITS_CONCURRENCY} (this checkout with the AWS limits model, with and without "
        f"{m.POLLERS} pollers, alternated with commit {BASELINE_COMMIT}, whose local stack has no limits model):",
        "",
        *(run_notes or ["- none measured (see the table)"]),
        "",
        "Other concurrency levels (batches in flight):",
        "",
        *(e2e_notes or ["- none measured"]),
        "",
        *cost_section(figures),
    ]
    output = Path(args.output)
    previous = output.read_text() if output.exists() else ""
    output.write_text(merge_report("\n".join(report), previous))
    log(f"written to {output} after {minutes:.1f} min")
    missed = [r.metric for r in rows if not r.met]
    for metric in missed:
        log(f"target not met or not measured: {metric}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
