"""The pieces of `make bench` (benchmarks/bench.py).

Scaffolding: `scaffolding` (image host, API call counters, the handlers in-process on moto with the
AWS limits model and the table's stream pumped into count_results), `stacks` (local stacks of this
checkout and of the baseline commit in a temporary git worktree, jobs timed over HTTP) and
`pollers` (clients polling a job, run as a process of their own). Measures: `measures` (each returns
its Rows). Report: `report` (Row, the table, the cost model, load sampling, BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (str(ROOT), str(ROOT / "layers" / "common")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
