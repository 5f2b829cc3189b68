"""The measures of `make bench`, each returning its Rows (and notes, or figures for the cost model)."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from benchkit.report import CostInputs, Row
from benchkit.scaffolding import EXPECTED_MAX_OF_TEN_SLEEPS, Consumption, ImageHost, InProcessApp, ideal_seconds, log
from benchkit.stacks import BASELINE_COMMIT, BaselineCheckout, JobRun, run_job, start_stack, start_stack_at

POLLERS = 50
LIMITS_CONCURRENCY = 20


# -- in-process: handler time, capacity units and requests per image -------------------------------
def in_process(host: ImageHost, images: int, batches_timed: int) -> tuple[list[Row], CostInputs]:
    """submit, then process_image on every batch (the real 0.1-0.4 s delay on the first
    `batches_timed`, none after) with the stream delivered to count_results as its mapping would:
    WCU/RCU from the AWS limits model (table and indexes), requests from botocore's hooks."""
    log(f"in-process: {images} images, {batches_timed} timed batches")
    with InProcessApp() as app:
        job_id, submit_s = app.submit(host.visits(images))
        submit_use = app.consumed()
        submit_sqs = app.counter.service("sqs")
        submit_writes = app.counter.dynamodb_writes()
        app.limits.limits.reset()
        app.counter.reset()

        from retail_pulse.logic import process as process_logic

        recorded_sleeps: list[float] = []
        real_random = process_logic.random

        class RecordingRandom:
            """Stands in for the `random` module inside the processing logic to see each sleep."""

            @staticmethod
            def uniform(a: float, b: float) -> float:
                value = real_random.uniform(a, b)
                recorded_sleeps.append(value)
                return value

        process_logic.random = RecordingRandom
        from retail_pulse.adapters.dynamodb.results import ResultItems

        real_record = ResultItems.record_results
        write_times: list[float] = []

        def timed_record(self, results, deadline=None):
            started = time.perf_counter()
            try:
                return real_record(self, results, deadline)
            finally:
                write_times.append(time.perf_counter() - started)

        ResultItems.record_results = timed_record
        processing, counting = Consumption(), Consumption()
        ratios, handler_times, batch_writes = [], [], []
        batches = process_writes = count_writes = 0
        try:
            while messages := app.receive():
                timed = batches < batches_timed
                os.environ["PROCESSING_DELAY_MAX_S"] = "0.4" if timed else "0.0"
                os.environ["PROCESSING_DELAY_MIN_S"] = "0.1" if timed else "0.0"
                app.process_fn.kit.clear_caches()
                recorded_sleeps.clear()
                write_times.clear()
                before, writes_before = app.consumed(), app.counter.dynamodb_writes()
                elapsed = app.process(messages)
                between, writes_between = app.consumed(), app.counter.dynamodb_writes()
                app.pump(flush=False)
                processing += between - before
                counting += app.consumed() - between
                process_writes += writes_between - writes_before
                count_writes += app.counter.dynamodb_writes() - writes_between
                batches += 1
                if timed and recorded_sleeps:
                    handler_times.append(elapsed)
                    ratios.append(elapsed / max(recorded_sleeps))
                    batch_writes.append(sum(write_times))
            before, writes_before = app.consumed(), app.counter.dynamodb_writes()
            app.pump(flush=True)
            counting += app.consumed() - before
            count_writes += app.counter.dynamodb_writes() - writes_before
        finally:
            process_logic.random = real_random
            ResultItems.record_results = real_record
        process_sqs = app.counter.service("sqs")
        job = app.job(job_id)
        runs = app.stream_invocations
        failures = app.stream_failures()
        memory = {
            name: app.memory_mb(name) for name in ("ProcessImageFunction", "CountResultsFunction", "SubmitFunction")
        }
    assert job["status"] == "completed" and int(job["succeeded"]) == images, job
    assert not failures, f"{failures} count_results invocations failed"
    counted = sum(r.records for r in runs)
    rows = [
        Row(
            "process_image: handler time / max(sleep), median of 10-image batches",
            statistics.median(ratios),
            1.3,
            "x",
            note=f"{len(ratios)} batches, median handler {statistics.median(handler_times) * 1000:.0f} ms, of which "
            f"{statistics.median(batch_writes) * 1000:.0f} ms writing its 10 results (one PutItem after another "
            "here: moto in-process is not thread-safe; Lambda writes them 10 at once)",
        ),
        Row(
            "DynamoDB WCU per image, processing (results + visit index + counting)",
            (processing.wcu + counting.wcu) / images,
            2.5,
            "WCU/img",
            note=f"process_image: table {processing.table_wcu / images:.2f} + visit index "
            f"{processing.index_wcu / images:.2f}; count_results {counting.wcu / images:.2f} in {len(runs)} runs "
            f"of {counted / max(len(runs), 1):.0f} records (one batch in flight); "
            f"RCU {(processing.rcu + counting.rcu) / images:.2f}/img; AWS limits model, {images:,} images; "
            f"write requests {process_writes / images:.2f}/img by process_image (one conditional PutItem per "
            f"result since issue 12: the old <= 0.15 requests/img of one transaction per batch no longer applies) "
            f"+ {count_writes / images:.3f}/img by count_results",
        ),
        Row(
            "DynamoDB WCU per image, submit",
            submit_use.wcu / images,
            0.1,
            "WCU/img",
            note=f"job item and its index entries, for a {images:,}-image job; RCU {submit_use.rcu / images:.3f}/img",
        ),
        Row("DynamoDB write requests per image, submit", submit_writes / images, 0.05, "req/img"),
        Row("SQS requests per image, submit", submit_sqs / images, 0.11, "req/img"),
    ]
    figures = CostInputs(
        images=images,
        process_batch_s=statistics.median(handler_times),
        process_memory_mb=memory["ProcessImageFunction"],
        count_s_per_image=sum(r.seconds for r in runs) / images,
        count_invocations_per_image=len(runs) / images,
        count_memory_mb=memory["CountResultsFunction"],
        submit_s_per_image=submit_s / images,
        submit_memory_mb=memory["SubmitFunction"],
        wcu_per_image=(processing.wcu + counting.wcu) / images,
        rcu_per_image=(processing.rcu + counting.rcu) / images,
        submit_wcu_per_image=submit_use.wcu / images,
        submit_rcu_per_image=submit_use.rcu / images,
        sqs_submit_per_image=submit_sqs / images,
        sqs_process_per_image=process_sqs / images,
    )
    return rows, figures


# -- local stack: submit, status and fairness at scale ---------------------------------------------
def timed_submit(stack, visits) -> tuple[str, float]:
    started = time.perf_counter()
    job_id = stack.submit(visits)
    return job_id, time.perf_counter() - started


def local_stack_scale(host: ImageHost, log_dir: Path, big: int) -> list[Row]:
    """Submit latency, status latency of a big job, and a small job's wait behind it (fair queues)."""
    rows = []
    stack = start_stack(log_dir, "--warm", "20")
    try:
        _, t5k = timed_submit(stack, host.visits(5000, store="RP00002"))
        rows.append(Row("submit 5,000 images: accepted in", t5k, 3.0, "s"))
        big_job, tbig = timed_submit(stack, host.visits(big, per_visit=100, store="RP00003"))
        rows.append(Row(f"submit {big:,} images: accepted in", tbig, 25.0, "s"))
        over = stack.post("/api/submit", {"count": 501, "visits": host.visits(50_001, per_visit=100)})
        rows.append(
            Row("submit 50,001 images: answered 413", float(over.status_code), 413.0, "status", note=over.text[:80])
        )
        latencies = []
        for _ in range(50):
            started = time.perf_counter()
            assert stack.get("/api/status", jobid=big_job).status_code == 200
            latencies.append(time.perf_counter() - started)
        rows.append(Row(f"status of a {big:,}-image job, median", statistics.median(latencies) * 1000, 50.0, "ms"))
        small, _ = timed_submit(stack, host.visits(50, store="RP00004"))
        started = time.perf_counter()
        stack.wait(small, timeout=120, interval=0.05)
        rows.append(
            Row(
                f"50-image job behind a running {big:,}-image job: done in",
                time.perf_counter() - started,
                10.0,
                "s",
                note="fair queues: MessageGroupId = job id",
            )
        )
    finally:
        stack.stop()
    return rows


# -- local stack: the AWS limits model vs the code before it, and pollers beside a job -------------
WARM_UP_IMAGES = 200


def warm_up(stack, host: ImageHost) -> None:
    """A small job run to its end, untimed: the first job on a fresh stack also pays for first
    imports, connections and the stream pollers' start."""
    try:
        stack.wait(stack.submit(host.visits(WARM_UP_IMAGES, store="RP00006")), timeout=600, interval=0.2)
    except AssertionError as exc:  # only a warm-up: the timed job says whether the stack works
        log(f"warm-up job did not end: {str(exc)[:200]}")


def _runs(runs: list[JobRun]) -> str:
    return ", ".join(f"{r.seconds:.1f}" for r in runs) + " s"


def limits_and_pollers(
    host: ImageHost, log_dir: Path, images: int, rounds: int
) -> tuple[list[Row], list[str], list[JobRun]]:
    """`rounds` x, in an order that alternates from round to round: this checkout's stack (limits on,
    L = 20) runs the job without and with pollers (their order alternates too), and the baseline
    commit's stack (no limits model) runs it; in the first round only, this checkout's stack with
    `--no-aws-limits` runs it as well (what the limits model costs, apart from the write path). Each
    stack first runs a small untimed job (warm caches and stream pollers, as in a running service).
    The best run of each kind is compared (the machine is shared: the best is the least disturbed).

    Returns the rows, notes, and the limits-on runs without pollers (the end-to-end figure at L = 20)."""
    flags = ("--max-concurrency", str(LIMITS_CONCURRENCY), "--warm", str(LIMITS_CONCURRENCY))
    plain, polled, baseline_runs, limits_off = [], [], [], []
    refusals: dict[str, int] = {}

    def limits_on(round_: int) -> None:
        stack = start_stack(log_dir, *flags)
        try:
            assert stack.limits().get("enabled"), "the local stack runs without the AWS limits model"
            warm_up(stack, host)
            for pollers in (0, POLLERS) if round_ % 2 == 0 else (POLLERS, 0):
                stack.reset_limits()
                label = f"limits on, {pollers} pollers, round {round_ + 1}"
                run = run_job(stack, host, images, store="RP00005", pollers=pollers, label=label)
                (polled if pollers else plain).append(run)
                for name, n in stack.limits()["counters"].items():
                    refusals[name] = refusals.get(name, 0) + n
        finally:
            stack.stop()

    def old_code(round_: int) -> None:
        if baseline.path is None:
            return
        stack = start_stack_at(baseline.path, log_dir, *flags)
        try:
            warm_up(stack, host)
            label = f"{BASELINE_COMMIT}, no limits model, round {round_ + 1}"
            baseline_runs.append(run_job(stack, host, images, store="RP00005", label=label))
        finally:
            stack.stop()

    def this_code_limits_off(round_: int) -> None:
        if round_ > 0:
            return
        stack = start_stack(log_dir, "--no-aws-limits", *flags)
        try:
            warm_up(stack, host)
            label = f"this checkout, --no-aws-limits, round {round_ + 1}"
            limits_off.append(run_job(stack, host, images, store="RP00005", label=label))
        finally:
            stack.stop()

    errors: list[str] = []
    with BaselineCheckout() as baseline:
        for round_ in range(rounds):
            order = [limits_on, old_code, this_code_limits_off]
            for measure in order if round_ % 2 == 0 else order[::-1]:
                try:
                    measure(round_)
                except Exception as exc:  # one failed stack or job leaves the other rows measured
                    errors.append(f"{measure.__name__}, round {round_ + 1}: {str(exc)[:200]}".replace("\n", " "))
                    log(f"failed: {errors[-1]}")
    failed = "; failed: " + "; ".join(errors) if errors else ""
    metric = (
        f"limits on: {images:,} images at L = {LIMITS_CONCURRENCY}, throughput vs {BASELINE_COMMIT} "
        "(before the new write path) with them off"
    )
    pollers_metric = (
        f"{POLLERS} pollers (status + results every 0.1 s) beside a {images:,}-image job at L = "
        f"{LIMITS_CONCURRENCY}: throughput vs none"
    )
    if not plain:
        return (
            [
                Row(metric, None, 0.85, "x", lower_is_better=False, note=f"no limits-on run{failed}"),
                Row(pollers_metric, None, 0.8, "x", lower_is_better=False, note=f"no limits-on run{failed}"),
            ],
            notes_of(plain + polled + baseline_runs + limits_off),
            plain,
        )
    best_plain = max(plain, key=lambda r: r.throughput)
    refused = ", ".join(f"{name} {n}" for name, n in refusals.items() if n) or "none"
    if baseline_runs:
        best_base = max(baseline_runs, key=lambda r: r.throughput)
        limits_row = Row(
            metric,
            best_plain.throughput / best_base.throughput,
            0.85,
            "x",
            lower_is_better=False,
            note=f"best of {len(plain)}: {best_plain.seconds:.1f} s vs {best_base.seconds:.1f} s (runs: "
            f"{_runs(plain)} vs {_runs(baseline_runs)}, alternated); refusals by the limits model: {refused}"
            + (
                f"; this checkout with --no-aws-limits: {_runs(limits_off)} (throughput with limits / without "
                f"{min(r.seconds for r in limits_off) / best_plain.seconds:.2f})"
                if limits_off
                else ""
            )
            + failed,
        )
    else:
        reason = baseline.reason or "its runs failed"
        limits_row = Row(metric, None, 0.85, "x", lower_is_better=False, note=f"baseline not run: {reason}{failed}")
    if not polled:
        pollers_row = Row(pollers_metric, None, 0.8, "x", lower_is_better=False, note=f"no run with pollers{failed}")
        return [limits_row, pollers_row], notes_of(plain + polled + baseline_runs + limits_off), plain
    best_polled = max(polled, key=lambda r: r.throughput)
    polls = best_polled.polls
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(polls.get("codes", {}).items()))
    pollers_row = Row(
        pollers_metric,
        best_polled.throughput / best_plain.throughput,
        0.8,
        "x",
        lower_is_better=False,
        note=f"best of {len(polled)}: {best_polled.seconds:.1f} s vs {best_plain.seconds:.1f} s (runs: "
        f"{_runs(polled)} vs {_runs(plain)}); polls of the best run: {polls.get('requests', 0):,} requests "
        f"({codes}; {polls.get('requests', 0) / max(polls.get('seconds') or 1, 1e-9):.0f}/s answered of "
        f"{POLLERS * 2 / 0.1:.0f}/s offered: each poller waits for its answers), median "
        f"{polls.get('median_ms')} ms, p95 {polls.get('p95_ms')} ms",
    )
    return [limits_row, pollers_row], notes_of(plain + polled + baseline_runs + limits_off), plain


def notes_of(runs: list[JobRun]) -> list[str]:
    return [
        f"- {r.label}: {r.images:,} images in {r.seconds:.1f} s ({r.throughput:.0f} images/s)"
        + (f"; {r.status_failures} status requests of the benchmark not answered 200" if r.status_failures else "")
        for r in runs
    ]


# -- local stack: end to end vs the ideal ----------------------------------------------------------
def end_to_end(
    host: ImageHost, log_dir: Path, images: int, concurrencies: list[int], known: dict[int, list[JobRun]]
) -> tuple[list[Row], list[str]]:
    """Wall time of an `images`-image job with the real delay at each concurrency (batches in flight),
    against the ideal. `known`: runs already made at a concurrency (same job size), not repeated."""
    rows, notes = [], []
    for concurrency in concurrencies:
        runs = [r for r in known.get(concurrency, []) if r.images == images]
        source = f", best of {len(runs)} runs of the limits comparison" if runs else ""
        if not runs:
            # Workers warm before the clock starts, as in a service that has been running.
            stack = start_stack(log_dir, "--max-concurrency", str(concurrency), "--warm", str(concurrency))
            try:
                runs = [run_job(stack, host, images, store="RP00005", label=f"end to end, L = {concurrency}")]
            finally:
                stack.stop()
        elapsed = min(r.seconds for r in runs)
        ideal = ideal_seconds(images, concurrency)
        line = (
            f"{images:,} images, real 0.1-0.4 s delay, L = {concurrency}: {elapsed:.1f} s "
            f"(ideal {ideal:.1f} s = {images} / ({concurrency} x 10 / {EXPECTED_MAX_OF_TEN_SLEEPS:.3f} s){source})"
        )
        if concurrency == 5:
            rows.append(
                Row(
                    f"end to end, {images:,} images, L = 5: throughput vs ideal",
                    ideal / elapsed,
                    0.85,
                    "of ideal",
                    lower_is_better=False,
                    note=f"{elapsed:.1f} s, ideal {ideal:.1f} s",
                )
            )
        else:
            notes.append(f"- {line}: {ideal / elapsed:.2f} of ideal")
    return rows, notes
