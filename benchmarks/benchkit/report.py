"""Rows, the table, the cost model and BENCHMARKS.md. `make bench` owns the file's top part (title,
table, notes) and its cost section; every other `## ...` section (written by other scripts, e.g.
benchmarks/cold_start.py's "Cold start (INIT)") is kept verbatim, in its order."""

from __future__ import annotations

import math
import os
import statistics
import threading
from dataclasses import dataclass

# Sections of BENCHMARKS.md that bench writes (by heading prefix; older headings of bench's included).
OWNED_PREFIXES = ("## Cost per 1,000 images",)
COST_HEADING = "## Cost per 1,000 images (model from the figures above)"

# us-east-1 on-demand list prices, 2026 (free tiers ignored).
LAMBDA_GB_S = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
DYNAMODB_WRU = 0.625 / 1e6
DYNAMODB_RRU = 0.125 / 1e6
XRAY_TRACE = 5.0 / 1e6
LOGS_GB = 0.50
LOGS_MB_PER_THOUSAND = 0.1  # assumption: ~100 EMF records and a few warnings per 1,000 images


@dataclass
class Row:
    metric: str
    measured: float | None  # None: not measured (the note says why)
    target: float
    unit: str
    lower_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.measured is None:
            return None
        if self.lower_is_better:
            return self.measured / self.target
        return self.target / self.measured if self.measured else math.inf

    @property
    def met(self) -> bool:
        if self.measured is None:
            return False
        return self.measured <= self.target if self.lower_is_better else self.measured >= self.target

    def line(self) -> str:
        """The row in the Markdown table (a `|` inside the metric or note would split its cell)."""
        metric, note = (text.replace("|", "\\|") for text in (self.metric, self.note))
        bound = "<=" if self.lower_is_better else ">="
        if self.measured is None:
            return f"| {metric} | not measured | {bound} {self.target:g} | - | not measured | {note} |"
        return (
            f"| {metric} | {self.measured:.3f} {self.unit} | {bound} {self.target:g} | {self.ratio:.2f} "
            f"| {'yes' if self.met else 'NO'} | {note} |"
        )


def table(rows: list[Row]) -> str:
    header = "| metric | measured | target | ratio | met | note |\n| --- | --- | --- | --- | --- | --- |"
    return "\n".join([header, *(r.line() for r in rows)])


@dataclass
class CostInputs:
    """Per-image figures of the in-process run (handlers on moto with the AWS limits model)."""

    images: int
    process_batch_s: float  # median process_image handler time of a 10-image batch
    process_memory_mb: int
    count_s_per_image: float  # count_results handler time per image counted
    count_invocations_per_image: float
    count_memory_mb: int
    submit_s_per_image: float
    submit_memory_mb: int
    wcu_per_image: float  # processing: results, visit index, counting
    rcu_per_image: float  # processing and counting
    submit_wcu_per_image: float
    submit_rcu_per_image: float
    sqs_submit_per_image: float
    sqs_process_per_image: float  # process_image's own SQS requests (not the event source's)


def cost_table(c: CostInputs) -> tuple[list[str], float]:
    """Markdown rows of the cost per 1,000 images, and the total (US$)."""
    n = 1000
    batches = n / 10
    process_gb_s = batches * c.process_batch_s * c.process_memory_mb / 1024
    count_invocations = n * c.count_invocations_per_image
    count_gb_s = n * c.count_s_per_image * c.count_memory_mb / 1024
    submit_gb_s = n * c.submit_s_per_image * c.submit_memory_mb / 1024
    sqs = n * c.sqs_submit_per_image + batches + batches + n * c.sqs_process_per_image
    wcu = n * (c.wcu_per_image + c.submit_wcu_per_image)
    rcu = n * (c.rcu_per_image + c.submit_rcu_per_image)
    traces = batches + count_invocations
    items = [
        (
            "process_image Lambda",
            f"{batches:.0f} invocations x {c.process_batch_s * 1000:.0f} ms (median 10-image batch, measured) "
            f"x {c.process_memory_mb / 1024:g} GB = {process_gb_s:.1f} GB-s",
            process_gb_s * LAMBDA_GB_S + batches * LAMBDA_REQUEST,
        ),
        (
            "count_results Lambda",
            f"{count_invocations:.1f} invocations, {c.count_s_per_image * 1000:.2f} ms per image counted (measured) "
            f"x {c.count_memory_mb / 1024:g} GB = {count_gb_s:.2f} GB-s",
            count_gb_s * LAMBDA_GB_S + count_invocations * LAMBDA_REQUEST,
        ),
        (
            "submit Lambda",
            f"{c.submit_s_per_image * 1000:.2f} ms per image (measured on moto: an upper bound) "
            f"x {c.submit_memory_mb / 1024:g} GB = {submit_gb_s:.2f} GB-s",
            submit_gb_s * LAMBDA_GB_S,
        ),
        (
            "SQS",
            f"{n * c.sqs_submit_per_image:.0f} send batches (measured) + ~{batches:.0f} receives + {batches:.0f} "
            f"delete batches (the event source) + {n * c.sqs_process_per_image:.0f} by process_image = {sqs:.0f}",
            sqs * SQS_REQUEST,
        ),
        (
            "DynamoDB writes",
            f"{wcu:.0f} WRU (measured: results, visit index, counting {n * c.wcu_per_image:.0f}; "
            f"submit {n * c.submit_wcu_per_image:.0f})",
            wcu * DYNAMODB_WRU,
        ),
        (
            "DynamoDB reads",
            f"{rcu:.0f} RRU (measured), plus 1 per status poll; stream reads by Lambda are free",
            rcu * DYNAMODB_RRU,
        ),
        ("X-Ray", f"at most one trace per invocation: {traces:.0f}", traces * XRAY_TRACE),
        (
            "CloudWatch Logs",
            f"~{LOGS_MB_PER_THOUSAND:g} MB (assumption: metrics records and warnings)",
            LOGS_MB_PER_THOUSAND / 1024 * LOGS_GB,
        ),
    ]
    total = sum(cost for _, _, cost in items)
    lines = ["| item | volume per 1,000 images | cost |", "| --- | --- | --- |"]
    lines += [f"| {name} | {volume} | ${cost:.5f} |" for name, volume, cost in items]
    lines.append(f"| **total** | | **${total:.4f} (${total * 1000:.2f} per million images)** |")
    return lines, total


def cost_section(c: CostInputs) -> list[str]:
    lines, _ = cost_table(c)
    return [
        COST_HEADING,
        "",
        "us-east-1 on-demand list prices (Lambda x86 $0.0000166667 per GB-s and $0.20 per million requests;",
        "SQS $0.40 per million requests; DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU;",
        "X-Ray $5 per million traces; CloudWatch Logs $0.50 per GB), free tiers, data transfer and API Gateway",
        f"($3.50 per million requests) excluded. Measured in-process on a {c.images:,}-image job, one batch in",
        "flight: count_results' runs are smaller than at L = 20 (its share per image is an upper bound).",
        "",
        *lines,
        "",
    ]


class LoadSampler:
    """The machine's 1-minute load average, sampled every `every` seconds in a daemon thread while a
    `with` block runs: figures measured while other work loads the machine are indicative only."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-sampler")

    def _run(self) -> None:
        while True:
            if hasattr(os, "getloadavg"):
                self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def contended(self) -> bool:
        """More runnable work than cores at some point (the benchmark alone keeps about one busy)."""
        return bool(self.samples) and max(self.samples) > (os.cpu_count() or 1)

    def describe(self) -> str:
        if not self.samples:
            return "load average not available"
        return (
            f"load average (1 min) {min(self.samples):.1f}-{max(self.samples):.1f}, "
            f"median {statistics.median(self.samples):.1f}, on {os.cpu_count()} cores"
        )


# -- BENCHMARKS.md ---------------------------------------------------------------------------------
def split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first `## ` heading, and each `## ` section (heading, whole text), in
    order. Lines inside fenced code blocks are never headings."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((line.rstrip("\n"), [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "".join(preamble), [(heading, "".join(lines)) for heading, lines in sections]


def merge_report(ours: str, previous: str) -> str:
    """Bench's part (`ours`: its top and its own sections) followed by every section of the previous
    file that bench does not own, verbatim and in order."""
    _, sections = split_sections(previous)
    kept = [body for heading, body in sections if not heading.startswith(OWNED_PREFIXES)]
    out = ours.rstrip("\n") + "\n"
    for body in kept:
        out += "\n" + body.strip("\n") + "\n"
    return out
