"""A JSON manifest (the JSON submit body, `{"count": N, "visits": [...]}`), read as a stream: one
visit at a time, never the whole document in memory (domain/manifest.py for the other formats)."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any

from retail_pulse.domain.errors import InvalidRequest
from retail_pulse.domain.manifest import (
    BOM,
    MAX_LINE_BYTES,
    Entry,
    ManifestInvalid,
    ManifestReader,
    Position,
)
from retail_pulse.domain.validation import _check_no_credentials, _check_text, echo, is_http_url

_WS = re.compile(r"[ \t\n\r]*")


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
