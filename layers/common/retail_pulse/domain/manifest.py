"""Manifests: a job's visits as a file, read as a stream (never whole in memory), resumable from any
position a reader hands out.

Three formats, told apart by their first bytes (`sniff`):
  json   the submit body itself: {"count": n, "visits": [...], "callback_url": ...}, any layout
  jsonl  JSON Lines: one visit object per line ({"store_id", "image_url": [...], "visit_time"})
  csv    a header naming store_id, image_url and visit_time (any order; other columns ignored),
         then one image per row; consecutive rows of one store and visit time make one visit

Every row is checked by the submit body's own rules (domain/validation.py); an invalid row is an
`Entry` with an error naming its line, and reading goes on (the whole file is checked, so every
invalid row is reported, up to a bound). What cannot be read past (not UTF-8 JSON, a broken JSON
document, a line longer than MAX_LINE_BYTES) raises ManifestInvalid with the line.

A `Position` (byte offset, line, images and visits before it, and what the format needs to go on
there) is where an entry starts or ends: reading again from an entry's `end` yields the entries
after it, byte for byte the same, which is what lets the fan-out resume after a crash.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.models import Visit
from retail_pulse.domain.validation import (
    InputLimits,
    _parse_visit,
)

FORMATS = ("csv", "jsonl", "json")
CSV_COLUMNS = ("store_id", "image_url", "visit_time")
MAX_LINE_BYTES = 1024 * 1024  # one CSV or JSON Lines line, one visit of a JSON manifest
SNIFF_BYTES = 64 * 1024  # what `sniff` needs of the file's start
BOM = "\ufeff"
# What _check_text and is_http_url refuse: control characters, unpaired surrogates (and, in URLs, spaces).
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_OR_SPACE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]|\\s")
_FIRST_KEY = re.compile(r'\{\s*"([a-z_]+)"\s*:')
NOT_A_MANIFEST = (
    "manifest: not a manifest we can read: a CSV file whose header names store_id,image_url,visit_time, "
    'JSON Lines (one visit object per line), or a JSON job ({"count": ..., "visits": [...]})'
)


class ManifestInvalid(Exception):
    """The file cannot be read past `line` (the rest is not looked at)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(slots=True)
class Position:
    offset: int = 0  # byte of the file where reading goes on
    line: int = 1  # its line number (1-based)
    visits: int = 0  # visits (JSON, JSON Lines) or rows (CSV) before it
    images: int = 0  # images before it: the index of the next image
    state: dict = field(default_factory=dict)  # what the format needs to go on (see each reader)

    def to_json(self) -> str:
        return json.dumps(
            {"o": self.offset, "l": self.line, "v": self.visits, "i": self.images, "s": self.state},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Position:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data["o"], data["l"], data["v"], data["i"], data.get("s") or {})


@dataclass(slots=True)
class Entry:
    """One visit (or CSV row) of the manifest: valid (`visit`) or not (`error`, without the line)."""

    line: int
    start: Position
    end: Position
    visit: Visit | None = None
    error: str | None = None
    first_in_visit: bool = True  # CSV: the first row of its visit (reports count the visit once)

    @property
    def images(self) -> int:
        return len(self.visit.image_urls) if self.visit else 0


def sniff(head: bytes) -> str:
    """The format of a file that starts with `head` (its first SNIFF_BYTES or all of it); raises
    ManifestInvalid when it is none of ours."""
    text = head.decode("utf-8", errors="replace").lstrip(BOM).lstrip(" \t\r\n")
    if not text:
        raise ManifestInvalid(1, "the file is empty")
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            value = json.loads(first)
        except ValueError:
            # A document over several lines, or a first line longer than the head: its first member
            # tells (a visit's members, or the job's).
            key = _FIRST_KEY.match(text)
            return "jsonl" if key and key.group(1) in CSV_COLUMNS else "json"
        if isinstance(value, dict) and "visits" not in value and set(value) & set(CSV_COLUMNS):
            return "jsonl"
        return "json"
    header = text.split("\n", 1)[0]
    if _csv_columns(header) is not None:
        return "csv"
    raise ManifestInvalid(1, NOT_A_MANIFEST.removeprefix("manifest: "))


def read(
    fmt: str,
    chunks: Iterable[bytes],
    start: Position | None = None,
    *,
    limits: InputLimits | None = None,
    max_images: int,
    check: bool = True,
) -> ManifestReader:
    """A reader of the file's entries from `start` (the file's beginning by default); `chunks` are the
    file's bytes from `start.offset` on. With `check` False, rows are only parsed (a manifest checked
    before: the fan-out's second pass), not checked again."""
    # The JSON document's reader lives in manifest_json.py (it builds on ManifestReader, below).
    from retail_pulse.domain.manifest_json import JsonDocumentReader

    reader = {"csv": CsvReader, "jsonl": JsonLinesReader, "json": JsonDocumentReader}[fmt]
    return reader(chunks, start or Position(), limits or InputLimits(), max_images, check)


class ManifestReader:
    """Iterate it for the entries. After the last: `callback_url` (JSON documents may carry one)."""

    def __init__(
        self, chunks: Iterable[bytes], start: Position, limits: InputLimits, max_images: int, check: bool
    ) -> None:
        self.chunks = iter(chunks)
        self.start = start
        self.limits = limits
        self.max_images = max_images
        self.check = check
        self.callback_url: str | None = None
        self._times: dict[str, str | None] = {}

    def __iter__(self) -> Iterator[Entry]:
        raise NotImplementedError

    def _visit(self, raw: object, where: str) -> Visit:
        """A visit from its raw JSON, checked by the submit body's rules (or only parsed)."""
        if not self.check:
            utc = self._utc(raw["visit_time"])  # type: ignore[index]
            return Visit(raw["store_id"], tuple(raw["image_url"]), raw["visit_time"], utc or "")  # type: ignore[index]
        # The common case, a valid visit, checked at C speed; anything else (and the error's exact
        # text) by the submit body's own rules.
        return self._valid(raw) or _parse_visit(raw, where, self.limits)

    def _utc(self, visit_time: str) -> str | None:
        """parse_visit_time, remembered: a manifest repeats each visit time for its images."""
        utc = self._times.get(visit_time)
        if utc is None:
            if len(self._times) > 4096:
                self._times.clear()
            utc = self._times[visit_time] = parse_visit_time(visit_time)
        return utc

    def _valid(self, raw: object) -> Visit | None:
        """The visit when every rule of _parse_visit surely holds; None to let _parse_visit decide."""
        if type(raw) is not dict:
            return None
        store_id, urls, visit_time = raw.get("store_id"), raw.get("image_url"), raw.get("visit_time")
        limits = self.limits
        if (
            type(store_id) is not str
            or not store_id.strip()
            or len(store_id) > limits.max_store_id_length
            or _CONTROL.search(store_id)
            or type(urls) is not list
            or not 0 < len(urls) <= limits.max_urls_per_visit
            or type(visit_time) is not str
            or len(visit_time) > limits.max_visit_time_length
            or _CONTROL.search(visit_time)
        ):
            return None
        for url in urls:
            if type(url) is not str or len(url) > limits.max_url_length or _CONTROL_OR_SPACE.search(url):
                return None
            try:
                parts = urlsplit(url)
                parts.port  # noqa: B018 - raises ValueError on a malformed port
            except ValueError:
                return None
            if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
                return None
        utc = self._utc(visit_time)
        return Visit(store_id, tuple(urls), visit_time, utc) if utc else None

    def _too_many(self, images: int, line: int) -> None:
        if images > self.max_images:
            raise ManifestInvalid(line, f"more than {self.max_images} images: a manifest may hold at most that many")


# -- line formats ---------------------------------------------------------------------------------
def _lines(chunks: Iterator[bytes], offset: int, line: int) -> Iterator[tuple[int, int, bytes | None]]:
    """(line number, byte offset, the line's bytes with its end) of each line; None for a line longer
    than MAX_LINE_BYTES (its bytes are skipped, never held)."""
    buf = bytearray()
    overlong = False
    for chunk in chunks:
        buf += chunk
        start = 0
        while True:
            newline = buf.find(b"\n", start)
            if newline < 0:
                break
            size = newline + 1 - start
            if overlong or size > MAX_LINE_BYTES:
                yield line, offset, None
                overlong = False
            else:
                yield line, offset, bytes(buf[start : newline + 1])
            offset += size
            line += 1
            start = newline + 1
        del buf[:start]
        if len(buf) > MAX_LINE_BYTES:  # no end in sight: count its bytes, drop them
            overlong = True
            offset += len(buf)
            buf.clear()
    if buf or overlong:
        yield line, offset, None if overlong else bytes(buf)


def _text(raw: bytes | None, line: int) -> str:
    if raw is None:
        raise ManifestInvalid(line, f"longer than {MAX_LINE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestInvalid(line, "not UTF-8 text") from None


def _csv_columns(header: str) -> list[int] | None:
    """Indices of store_id, image_url and visit_time in a header line (and the column count last)."""
    names = [name.strip().strip('"').strip().lower() for name in _csv_fields(header.lstrip(BOM).rstrip("\r\n"))]
    if not all(column in names for column in CSV_COLUMNS):
        return None
    return [names.index(column) for column in CSV_COLUMNS] + [len(names)]


def _csv_fields(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text]), [])


class CsvReader(ManifestReader):
    """One image per row. State: the header's column indices, and the previous row's store and visit
    time (rows of one visit are consecutive)."""

    def __iter__(self) -> Iterator[Entry]:
        pos = self.start
        state = dict(pos.state)
        lines = _lines(self.chunks, pos.offset, pos.line)
        rows, images = pos.visits, pos.images
        for line, offset, raw in lines:
            here = Position(offset, line, rows, images, state)
            text = _text(raw, line)
            if not text.strip():
                continue
            end_offset = offset + len(raw or b"")
            if "columns" not in state:
                columns = _csv_columns(text)
                if columns is None:
                    raise ManifestInvalid(line, "the header must name store_id, image_url and visit_time")
                state = {"columns": columns}
                continue
            rows += 1
            error, visit = self._row(text.rstrip("\r\n"), state["columns"])
            first = True
            if visit is not None:
                key = [visit.store_id, visit.visit_time]
                first = state.get("prev") != key
                state = {"columns": state["columns"], "prev": key}
                images += 1
                self._too_many(images, line)
            end = Position(end_offset, line + 1, rows, images, state)
            yield Entry(line, here, end, visit, error, first_in_visit=first)
        if "columns" not in state:
            raise ManifestInvalid(1, "the file holds no header")

    def _row(self, text: str, columns: list[int]) -> tuple[str | None, Visit | None]:
        fields = _csv_fields(text)
        if len(fields) != columns[3]:
            return f"{len(fields)} columns where the header has {columns[3]}", None
        store_id, url, visit_time = (fields[i].strip() for i in columns[:3])
        raw = {"store_id": store_id, "image_url": [url], "visit_time": visit_time}
        try:
            return None, self._visit(raw, "row")
        except InvalidRequest as exc:
            return exc.message.removeprefix("row.").replace("image_url[0]", "image_url", 1), None


class JsonLinesReader(ManifestReader):
    """One visit object per line; blank lines are skipped. No state beyond the position."""

    def __iter__(self) -> Iterator[Entry]:
        pos = self.start
        visits, images = pos.visits, pos.images
        for line, offset, raw in _lines(self.chunks, pos.offset, pos.line):
            here = Position(offset, line, visits, images)
            text = _text(raw, line)
            if not text.strip():
                continue
            visits += 1
            visit = error = None
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                error = "not valid JSON"
            else:
                try:
                    visit = self._visit(value, "visit")
                except InvalidRequest as exc:
                    error = exc.message.removeprefix("visit.")
            if visit is not None:
                images += len(visit.image_urls)
                self._too_many(images, line)
            yield Entry(line, here, Position(offset + len(raw or b""), line + 1, visits, images), visit, error)
