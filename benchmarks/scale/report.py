"""SCALE.md: the figures of every run, one table per scenario with both write paths side by side, the
targets (met / not met) and a cost per 1,000 images from what each run consumed.

Prices (us-east-1, on-demand, as listed by AWS in 2026): DynamoDB $0.625 per million write request
units, $0.125 per million read request units, storage $0.25 and PITR $0.20 per GB-month (standard
table class); DynamoDB Streams reads by Lambda triggers are free; Lambda (x86) $0.0000166667 per
GB-second and $0.20 per million requests; SQS (standard) $0.40 per million requests.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from .scenarios import CONCURRENCY, LAMBDA_MEMORY_MB, PATHS, SCENARIOS, TABLE_QUOTA_WCU

PRICES = {
    "write_request_unit": 0.625e-6,
    "read_request_unit": 0.125e-6,
    "storage_gb_month": 0.25,
    "pitr_gb_month": 0.20,
    "lambda_gb_s": 0.0000166667,
    "lambda_request": 0.20e-6,
    "sqs_request": 0.40e-6,
}
RETENTION_MONTHS = 30 / 30.4  # JobTtlDays = 30
EXPECTED_BATCH_S = 0.1 + 0.3 * 10 / 11  # E[max of 10 uniform(0.1, 0.4)] = 0.373 s
LAMBDA_CEILING_PER_L = 10 / EXPECTED_BATCH_S  # images/s per concurrent invocation
IGNORED_SQS = {"CreateQueue", "GetQueueAttributes"}


@dataclass
class Figures:
    """What one run says, per image where it can (see `figures`)."""

    r: Any
    images: int
    system_rate: float
    per_job_rate: float
    p50: float
    p99: float
    wcu: float
    rcu: float
    cost: dict[str, float]

    @property
    def total_cost(self) -> float:
        return sum(self.cost.values())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


def figures(r: Any) -> Figures:
    images = r.verified.images or r.spec.images
    consumed = next(iter(r.limits["consumed"].values()), {"write_units": 0, "read_units": 0, "indexes": {}})
    indexes = consumed.get("indexes", {}).values()
    wcu = (consumed["write_units"] + sum(i["write_units"] for i in indexes)) / images
    rcu = (consumed["read_units"] + sum(i["read_units"] for i in indexes)) / images
    done = r.completions if len(r.completions) == r.spec.jobs else []
    rates = [r.spec.images_per_job / t for t in done if t > 0]
    gb_s = sum(f.billed_s for f in r.functions.values()) * LAMBDA_MEMORY_MB / 1024
    invocations = sum(f.invocations for f in r.functions.values())
    sqs = sum(n for op, n in r.sqs_requests.items() if op not in IGNORED_SQS)
    stored_gb = r.verified.storage_bytes_per_image * 1000 / 1024**3
    per_k = 1000 / images
    cost = {
        "DynamoDB writes": wcu * 1000 * PRICES["write_request_unit"],
        "DynamoDB reads": rcu * 1000 * PRICES["read_request_unit"],
        "Lambda": (gb_s * PRICES["lambda_gb_s"] + invocations * PRICES["lambda_request"]) * per_k,
        "SQS": sqs * PRICES["sqs_request"] * per_k,
        "storage (30 days)": stored_gb * PRICES["storage_gb_month"] * RETENTION_MONTHS,
        "PITR (30 days)": stored_gb * PRICES["pitr_gb_month"] * RETENTION_MONTHS,
    }
    return Figures(
        r=r,
        images=images,
        system_rate=images / r.makespan_s if r.makespan_s and not math.isnan(r.makespan_s) else float("nan"),
        per_job_rate=statistics.median(rates) if rates else float("nan"),
        p50=_pct(done, 0.50),
        p99=_pct(done, 0.99),
        wcu=wcu,
        rcu=rcu,
        cost=cost,
    )


def _n(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _attempts(r: Any, kind: str) -> str:
    a = r.attempts
    ops = a.get((kind, "operations"), 0)
    if not ops:
        return "-"
    first = f"{a.get((kind, 'conflict', 'first'), 0):,} / {a.get((kind, 'throttle', 'first'), 0):,}"
    later = a.get((kind, "conflict", "later"), 0) + a.get((kind, "throttle", "later"), 0)
    return f"{ops:,}: {first}; {later:,} later; {a.get((kind, 'gave up'), 0):,} gave up"


def _row_values(f: Figures, full_size: int) -> dict[str, str]:
    r, v, q = f.r, f.r.verified, f.r.queues["ProcessImage"]
    c = r.limits["counters"]
    process = r.functions["ProcessImage"]
    extrapolated = ""
    if r.spec.images_per_job != full_size and not math.isnan(f.per_job_rate):
        extrapolated = f" (at {full_size:,}: ~{_n(full_size / f.per_job_rate, 1)})"
    batch_p50 = statistics.median(process.durations) if process.durations else float("nan")
    return {
        "run: jobs x images (F)": f"{r.spec.jobs} x {r.spec.images_per_job:,} (F = {r.spec.factor:g})",
        "images/s, system (images / last job's end)": _n(f.system_rate),
        "images/s, steady (10th-90th percentile of images measured)": _n(r.steady_rate),
        "images/s per job (median)": _n(f.per_job_rate),
        "job completion p50 / p99 (s)": f"{_n(f.p50, 1)} / {_n(f.p99, 1)}{extrapolated}",
        "TransactWriteItems: ops: conflicted / throttled first try; later refusals; gave up": _attempts(
            r, "transaction"
        ),
        "plain writes: ops: conflicted / throttled first try; later refusals; gave up": _attempts(r, "write"),
        "refusals at the wire: conflicts / throttles (incl. botocore's retries)": (
            f"{c['transaction_conflicts'] + c['plain_write_conflicts']:,} / "
            f"{c['throttled_transactions'] + c['throttled_plain_operations']:,}"
            + (f" ({c['throttled_by_gsi']:,} by a GSI)" if c["throttled_by_gsi"] else "")
        ),
        "batches redelivered (messages)": f"{q.redelivered_batches:,} ({q.redelivered_messages:,})",
        "batches left to the visibility timeout (messages that waited it out)": (
            f"{q.batches_left_to_timeout:,} ({q.waited_out_messages:,})"
        ),
        "images dead-lettered: after 5 receives / handed over with their result": (
            f"{r.dead_letters.get('after 5 receives', 0):,} / {r.dead_letters.get('with measured result', 0):,}"
        ),
        "good images recorded failed": f"{v.failed:,}",
        "counts exact": "yes" if not v.mismatches else f"NO: {len(v.mismatches)} mismatches",
        "WCU per image (table + GSIs)": _n(f.wcu, 2),
        "RCU per image": _n(f.rcu, 2),
        "cost per 1,000 images": f"${f.total_cost:.4f}",
        "model health: DynamoDB requests/s (real), batch p50 (s, modelled)": (
            f"{_n(r.dynamodb_requests / r.wall_s if r.wall_s else 0)}, {_n(batch_p50, 2)}"
        ),
        "outcome (wall s)": f"{r.outcome} ({_n(r.wall_s)})",
    }


def scenario_table(results: dict[tuple[str, int, str], Figures], scenario: Any) -> list[str]:
    columns = [(c, p) for c in CONCURRENCY for p in PATHS if (scenario.key, c, p) in results]
    if not columns:
        return []
    values = {col: _row_values(results[(scenario.key, *col)], scenario.images_per_job) for col in columns}
    header = "| | " + " | ".join(f"L = {c:,} {p}" for c, p in columns) + " |"
    lines = [header, "| --- " * (len(columns) + 1) + "|"]
    for metric in next(iter(values.values())):
        lines.append(f"| {metric} | " + " | ".join(values[col][metric] for col in columns) + " |")
    return lines


def targets(results: dict[tuple[str, int, str], Figures]) -> list[tuple[str, str, str, bool | None]]:
    """(target, where, figure, met) for each target of the issue, on the new path."""
    out: list[tuple[str, str, str, bool | None]] = []
    new = {k: f for k, f in results.items() if k[2] == "new"}
    for (scenario, concurrency, _), f in sorted(new.items()):
        where = f"{scenario}, L = {concurrency:,}"
        v, q = f.r.verified, f.r.queues["ProcessImage"]
        out.append(("0 good images recorded failed", where, f"{v.failed:,}", v.failed == 0))
        out.append(
            (
                "0 batches waiting out a visibility timeout (conflicts, throttles)",
                where,
                f"{q.batches_left_to_timeout:,} batches, {q.waited_out_messages:,} messages",
                q.batches_left_to_timeout == 0 and q.waited_out_messages == 0,
            )
        )
        out.append(("counts exact", where, "; ".join(v.mismatches[:3]) or "exact", not v.mismatches))
        out.append(("<= 2.5 WCU per image", where, f"{f.wcu:.2f}", f.wcu <= 2.5))
    one = new.get(("one-job", 1000, "new"))
    if one:
        out.append(
            (
                ">= 5,000 images/s, one 50,000-image job",
                "one-job, L = 1,000",
                _n(one.per_job_rate),
                one.per_job_rate >= 5000,
            )
        )
    for key in ("100-jobs", "100-jobs-50-areas"):
        f = new.get((key, 1000, "new"))
        if f is None:
            continue
        ceiling = min(1000 * LAMBDA_CEILING_PER_L, TABLE_QUOTA_WCU / f.wcu)
        rate = f.system_rate if f.r.spec.images_per_job >= 5000 else f.r.steady_rate
        kind = "system" if f.r.spec.images_per_job >= 5000 else "steady"
        out.append(
            (
                ">= 0.8 x min(1,000 x 10 / 0.373 s, 40,000 WCU/s / WCU per image)",
                f"{key}, L = 1,000",
                f"{_n(rate)} images/s ({kind}) = {rate / ceiling:.2f} of {_n(ceiling)}",
                rate >= 0.8 * ceiling,
            )
        )
    return out


def render(results: dict[tuple[str, int, str], Figures], header: list[str], notes: list[str]) -> str:
    lines = list(header)
    lines += ["", "## Targets (new write path)", "", "| target | where | figure | met |", "| --- | --- | --- | --- |"]
    for target, where, figure, met in targets(results):
        lines.append(f"| {target} | {where} | {figure} | {'yes' if met else 'NOT MET'} |")
    for scenario in SCENARIOS:
        table = scenario_table(results, scenario)
        if table:
            lines += ["", f"## {scenario.title}", "", *table]
            shortened = {f.r.spec.shortened for k, f in results.items() if k[0] == scenario.key and f.r.spec.shortened}
            lines += ["", *[f"Shortened: {s}." for s in sorted(shortened)]] if shortened else []
            lines += _hot_partitions(results, scenario.key)
    lines += ["", "## Cost per 1,000 images, by part (L = 1,000)", ""]
    lines += _cost_table(results)
    return "\n".join([*lines, "", *notes, ""])


def _hot_partitions(results: dict, key: str) -> list[str]:
    out = ["", "Hottest partitions at L = 1,000 (WCU over the run):", ""]
    for path in PATHS:
        f = results.get((key, 1000, path))
        if f is None:
            continue
        hot = [
            f"`{p['index'] or 'table'}` {p['partition'][:60]} {p['write_units']:,.0f}"
            for p in f.r.limits["hottest_partitions"][:3]
        ]
        out.append(f"- {path}: " + "; ".join(hot))
    return out if len(out) > 3 else []


def _cost_table(results: dict) -> list[str]:
    keys = [k for k in sorted(results) if k[1] == 1000]
    if not keys:
        return []
    parts = list(results[keys[0]].cost)
    lines = ["| run | " + " | ".join(parts) + " | total |", "| --- " * (len(parts) + 2) + "|"]
    for k in keys:
        f = results[k]
        lines.append(
            f"| {k[0]} {k[2]} | " + " | ".join(f"${f.cost[p]:.5f}" for p in parts) + f" | ${f.total_cost:.4f} |"
        )
    return lines
