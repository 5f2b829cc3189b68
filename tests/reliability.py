"""RELIABILITY.md, written by the tests themselves: each fault or attack a test tried, how many cases,
and what came of them. A test calls `record(...)` once its assertions have passed; the session-finish
hook in conftest.py writes the table. A row the current session did not record is kept from the
previous file, so running one test file updates its rows without dropping the others'.

    from reliability import record
    record("SSRF: loopback/private address in the URL", cases=12)
    record("SQS: every message delivered twice", cases=200, doubled=0, lost=0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "RELIABILITY.md"
HEADER = (
    "# Reliability and security figures\n\n"
    "Written by the test suite (`make test`; `tests/reliability.py`): every row is a fault or attack that\n"
    "a passing test tried, with how many cases it ran and what came of them. `lost`: images or jobs that\n"
    "vanished; `doubled`: counted twice; `stuck`: jobs left `ongoing`; `5xx`: server errors answered.\n"
)
TOTAL = "**total**"
COLUMNS = ("fault / attack", "cases", "lost", "doubled", "stuck", "5xx")


@dataclass
class Row:
    cases: int = 0
    lost: int = 0
    doubled: int = 0
    stuck: int = 0
    errors_5xx: int = 0


_recorded: dict[str, Row] = {}


def record(fault: str, cases: int, *, lost: int = 0, doubled: int = 0, stuck: int = 0, errors_5xx: int = 0) -> None:
    """Adds to the row of `fault` (a parametrized test may record the same fault many times)."""
    row = _recorded.setdefault(fault, Row())
    row.cases += cases
    row.lost += lost
    row.doubled += doubled
    row.stuck += stuck
    row.errors_5xx += errors_5xx


def recorded() -> dict[str, Row]:
    return dict(_recorded)


def _previous_rows(path: Path) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == TOTAL:
            continue
        if len(cells) == len(COLUMNS) and all(re.fullmatch(r"\d+", c) for c in cells[1:]):
            rows[cells[0].replace("\\|", "|")] = Row(*(int(c) for c in cells[1:]))
    return rows


def write_report(path: Path = REPORT) -> None:
    if not _recorded:
        return
    rows = _previous_rows(path) | _recorded
    lines = [HEADER, "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for fault in sorted(rows):
        row = rows[fault]
        values = [str(getattr(row, f.name)) for f in fields(Row)]
        lines.append("| " + " | ".join([fault.replace("|", "\\|"), *values]) + " |")
    total = Row(*(sum(getattr(r, f.name) for r in rows.values()) for f in fields(Row)))
    lines.append(f"| {TOTAL} | " + " | ".join(str(getattr(total, f.name)) for f in fields(Row)) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
