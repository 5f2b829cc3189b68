"""A job's results as a file: JSON Lines or CSV, one row per ended image with the fields of
/api/results (in that order), written row by row.

An export of a job that had not ended when it started says so in its last line: JSON Lines
`{"export": {...}}` (never a result: results have no `export` field), CSV a line starting with `#`.
"""

from __future__ import annotations

import csv
import io
import json

FORMATS = ("jsonl", "csv")
CONTENT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
RESULT_COLUMNS = (
    "index",
    "store_id",
    "image_url",
    "visit_time",
    "status",
    "width",
    "height",
    "perimeter",
    "error",
    "error_class",
    "processed_at",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def header(fmt: str) -> bytes:
    return (",".join(RESULT_COLUMNS) + "\r\n").encode() if fmt == "csv" else b""


def rows(fmt: str, bodies: list[dict]) -> bytes:
    """Result bodies (as /api/results returns them) as lines of the file."""
    if fmt == "jsonl":
        return "".join(json.dumps(b, ensure_ascii=False, separators=(",", ":")) + "\n" for b in bodies).encode()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([_cell(b[c]) for c in RESULT_COLUMNS] for b in bodies)
    return out.getvalue().encode()


def _cell(value: object) -> object:
    if value is None:
        return ""
    # A spreadsheet would run a cell starting with = + - @ as a formula (as the dashboard's CSV does).
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def trailer(fmt: str, summary: dict) -> bytes:
    """The last line of an export of a job that was still ongoing: how far the job had got."""
    if fmt == "jsonl":
        return (json.dumps({"export": summary}, separators=(",", ":")) + "\n").encode()
    progress = summary["progress"]
    return (
        f"# export of job {summary['job_id']} as of {summary['as_of']}: the job was {summary['job_status']} "
        f"({progress['processed']} of {progress['total']} images ended); {summary['rows']} rows above\r\n"
    ).encode()
