"""The pieces of `make bench` (benchmarks/bench.py): `scaffolding` (image host, call counters, the
handlers in-process on moto with the AWS limits model and the stream pump, local stacks of this
checkout and of the baseline commit, pollers), `measures` (each measure returns Rows) and `report`
(Row, the table, the cost model, BENCHMARKS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (str(ROOT), str(ROOT / "layers" / "common")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
