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

import codecs
import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from retail_pulse.domain.clock import parse_visit_time
from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.models import Visit
from retail_pulse.domain.validation import (
    InputLimits,
    _check_no_credentials,
    _check_text,
    _parse_visit,
    echo,
    is_http_url,
)

FORMATS = ("csv", "jsonl", "json")
CSV_COLUMNS = ("store_id", "image_url", "visit_time")
MAX_LINE_BYTES = 1024 * 1024  # one CSV or JSON Lines line, one visit of a JSON manifest
SNIFF_BYTES = 64 * 1024  # what `sniff` needs of the file's start
BOM = "\ufeff"
_WS = re.compile(r"[ \t\n\r]*")
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


# -- the JSON document -------------------------------------------------------------------------------
class JsonDocumentReader(ManifestReader):
    """The submit body as a file, read member by member and visit by visit (raw_decode of one value at
    a time from a window of the text), never whole. State: where it stands ("element": the next value
    is visit `k` of the `visits` array; "member": a member's value was just read), and the members read
    so far (count, callback_url, whether visits came)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.decoder = json.JSONDecoder()
        self.utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0  # index into buf of the next character
        self.eof = False
        self.offset = self.start.offset
        self.line = self.start.line

    # reading window
    def _fill(self) -> bool:
        """More text at the window's end (indices into it stay valid); False at the end of the file."""
        if self.eof:
            return False
        chunk = next(self.chunks, None)
        try:
            if chunk is None:
                self.eof = True
                self.buf += self.utf8.decode(b"", final=True)
                return False
            self.buf += self.utf8.decode(chunk)
        except UnicodeDecodeError:
            raise ManifestInvalid(self.line, "not UTF-8 text") from None
        return True

    def _advance(self, end: int) -> None:
        taken = self.buf[self.pos : end]
        self.offset += len(taken) if taken.isascii() else len(taken.encode("utf-8"))
        self.line += taken.count("\n")
        self.pos = end
        if end > 65536:  # what was read goes: the window holds about one chunk
            self.buf, self.pos = self.buf[end:], 0

    def _skip_ws(self) -> str:
        """The next character after whitespace ("" at the end of the file)."""
        while True:
            self._advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]  # `\s*` always matches
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, chars: str, what: str) -> str:
        found = self._skip_ws()
        if not found or found not in chars:
            shown = repr(found) if found else "the end of the file"
            raise ManifestInvalid(self.line, f"not valid JSON: expected {what}, found {shown}")
        self._advance(self.pos + 1)
        return found

    def _value(self, what: str) -> object:
        """The next JSON value (at most MAX_LINE_BYTES of text)."""
        self._skip_ws()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut_short = exc.pos >= len(self.buf) or exc.msg.startswith("Unterminated string")
                if not cut_short or not self._fill():
                    raise ManifestInvalid(self.line, f"not valid JSON ({what}): {exc.msg}") from None
                if len(self.buf) - self.pos > MAX_LINE_BYTES + 2 * 1024 * 1024:
                    raise ManifestInvalid(self.line, f"{what}: longer than {MAX_LINE_BYTES} bytes") from None
                continue
            except RecursionError:
                raise ManifestInvalid(self.line, f"not valid JSON ({what}): nested too deep") from None
            # A number may go on in the next chunk: decode again once more text has come.
            if end < len(self.buf) or not self._fill():
                if end - self.pos > MAX_LINE_BYTES:
                    raise ManifestInvalid(self.line, f"{what}: longer than {MAX_LINE_BYTES} bytes")
                self._advance(end)
                return value

    def _here(self, visits: int, images: int, state: dict) -> Position:
        return Position(self.offset, self.line, visits, images, state)

    def __iter__(self) -> Iterator[Entry]:
        state = dict(self.start.state) or {"at": "start"}
        visits, images = self.start.visits, self.start.images
        seen = dict(state.get("seen") or {})  # members read: count, callback_url, visits (bool)
        at = state["at"]
        if at == "start":
            if self._skip_ws() == BOM:
                self._advance(self.pos + 1)
            self._expect("{", "a JSON object")
            at = "first-member"
        while True:
            if at == "element":
                self._skip_ws()  # the visit's own line
                here = self._here(visits, images, {"at": "element", "seen": dict(seen)})
                line = self.line
                value = self._value(f"visits[{visits}]")
                visits += 1
                visit = error = None
                try:
                    visit = self._visit(value, f"visits[{visits - 1}]")
                except InvalidRequest as exc:
                    error = exc.message
                if visit is not None:
                    images += len(visit.image_urls)
                    self._too_many(images, line)
                at = "element" if self._expect(",]", "',' or ']' after a visit") == "," else "member"
                end = self._here(visits, images, {"at": at, "seen": dict(seen)})
                yield Entry(line, here, end, visit, error)
                continue
            if at == "member":  # after a member's value: another member, or the object's end
                if self._expect(",}", "',' or '}'") == "}":
                    break
            elif at == "first-member" and self._skip_ws() == "}":
                self._advance(self.pos + 1)
                break
            key = self._value("a member name")
            if not isinstance(key, str):
                raise ManifestInvalid(self.line, "not valid JSON: a member name must be a string")
            self._expect(":", "':' after a member name")
            if key == "visits":
                if seen.get("visits"):
                    raise ManifestInvalid(self.line, "visits: given twice")
                seen["visits"] = True
                self._expect("[", "visits: a list")
                if self._skip_ws() == "]":
                    self._advance(self.pos + 1)
                    at = "member"
                else:
                    at = "element"
                continue
            value = self._value(key)
            if key in ("count", "callback_url"):
                seen[key] = value
            at = "member"
        if self._skip_ws():
            raise ManifestInvalid(self.line, "not valid JSON: more after the job's closing '}'")
        self._finish(seen, visits)

    def _finish(self, seen: dict, visits: int) -> None:
        """The document's own rules, as the submit body's: count, visits, callback_url."""
        if "count" not in seen:
            raise ManifestInvalid(self.line, "count: required")
        count = seen["count"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise ManifestInvalid(self.line, "count: must be an integer")
        if not seen.get("visits"):
            raise ManifestInvalid(self.line, "visits: required")
        if count != visits:
            raise ManifestInvalid(self.line, f"count: {echo(count)} does not match the number of visits ({visits})")
        callback_url = seen.get("callback_url")
        if callback_url is not None:
            if not is_http_url(callback_url):
                raise ManifestInvalid(self.line, "callback_url: must be an absolute http(s) URL")
            try:
                _check_text(callback_url, "callback_url", self.limits.max_url_length)
                _check_no_credentials(callback_url, "callback_url")
            except InvalidRequest as exc:
                raise ManifestInvalid(self.line, exc.message) from None
            self.callback_url = callback_url
