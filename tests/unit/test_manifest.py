"""Manifest formats read as streams: every format, any chunking, resumable from any position."""

from __future__ import annotations

import json
import random
import re

import pytest

from retail_pulse.domain.manifest import MAX_LINE_BYTES, ManifestInvalid, Position, read, sniff

VISITS = [
    {"store_id": "RP00001", "image_url": ["http://h/a.jpg", "http://h/b.jpg"], "visit_time": "2024-03-15T10:00:00Z"},
    {"store_id": "RP00002", "image_url": ["http://h/é.jpg"], "visit_time": "2024-03-15T11:30:00+05:30"},
    {"store_id": "RP00003", "image_url": ["http://h/c.jpg"], "visit_time": "2024-03-16 10:00:00"},
]


def as_json(visits=VISITS, **extra) -> bytes:
    return json.dumps({"count": len(visits), "visits": visits, **extra}, indent=1, ensure_ascii=False).encode()


def as_jsonl(visits=VISITS) -> bytes:
    return "\n".join(json.dumps(v, ensure_ascii=False) for v in visits).encode() + b"\n"


def as_csv(visits=VISITS) -> bytes:
    rows = ["store_id,image_url,visit_time"]
    rows += [f"{v['store_id']},{url},{v['visit_time']}" for v in visits for url in v["image_url"]]
    return ("\r\n".join(rows) + "\r\n").encode()


def chunked(data: bytes, seed: int = 0):
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        n = rng.randint(1, 7)
        yield data[i : i + n]
        i += n


def entries(fmt, data, start=None, seed=0, **kwargs):
    offset = start.offset if start else 0
    reader = read(fmt, chunked(data[offset:], seed), start, max_images=kwargs.pop("max_images", 100), **kwargs)
    return list(reader), reader


@pytest.mark.parametrize(("fmt", "data"), [("json", as_json()), ("jsonl", as_jsonl()), ("csv", as_csv())])
def test_sniff_and_read_every_format(fmt, data):
    assert sniff(data[:100]) == fmt
    found, _ = entries(fmt, data)
    urls = [url for e in found for url in e.visit.image_urls]
    assert urls == [url for v in VISITS for url in v["image_url"]]
    assert all(e.error is None for e in found)
    assert found[-1].end.images == 4
    # The byte offsets are the file's: an entry's bytes hold its first URL.
    for e in found:
        assert e.visit.image_urls[0].encode() in data[e.start.offset : e.end.offset]


def test_csv_rows_of_one_visit_count_the_visit_once():
    found, _ = entries("csv", as_csv())
    assert [e.first_in_visit for e in found] == [True, False, True, True]


@pytest.mark.parametrize(("fmt", "data"), [("json", as_json()), ("jsonl", as_jsonl()), ("csv", as_csv())])
@pytest.mark.parametrize("seed", range(5))
def test_reading_on_from_any_entry_end_gives_the_same_entries(fmt, data, seed):
    whole, _ = entries(fmt, data, seed=seed)
    for i, entry in enumerate(whole):
        position = Position.from_json(entry.end.to_json())
        rest, _ = entries(fmt, data, position, seed=seed + 1)
        assert [(e.line, e.visit) for e in rest] == [(e.line, e.visit) for e in whole[i + 1 :]]


def test_invalid_rows_name_their_lines_and_reading_goes_on():
    data = (
        b"store_id,image_url,visit_time\n"
        b"RP00001,http://h/a.jpg,2024-03-15T10:00:00Z\n"
        b"RP00001,ftp://h/a.jpg,2024-03-15T10:00:00Z\n"
        b"\n"
        b"RP00001,http://h/a.jpg,yesterday\n"
        b"RP00001,http://h/a.jpg\n"
        b"RP00001,http://user:pw@h/a.jpg,2024-03-15T10:00:00Z\n"
    )
    found, _ = entries("csv", data)
    assert [(e.line, e.error) for e in found if e.error] == [
        (3, "image_url: must be an absolute http(s) URL"),
        (5, "visit_time: must be an RFC 3339 date-time, e.g. 2024-03-15T10:00:00Z"),
        (6, "2 columns where the header has 3"),
        (7, "image_url: must not contain credentials (user:password@)"),
    ]


def test_json_lines_errors():
    data = b'{"store_id": "A", "image_url": ["http://h/x"], "visit_time": "2024-03-15T10:00:00Z"}\nnot json\n{"x": 1}\n'
    found, _ = entries("jsonl", data)
    assert [(e.line, e.error) for e in found] == [(1, None), (2, "not valid JSON"), (3, "store_id: required")]


def test_json_document_errors_name_visits_and_lines():
    bad = [*VISITS[:1], {"store_id": "", "image_url": ["http://h/x"], "visit_time": "2024-03-15T10:00:00Z"}]
    found, _ = entries("json", as_json(bad))
    [error] = [e for e in found if e.error]
    assert error.error == "visits[1].store_id: must be a non-empty string"
    text = as_json(bad).decode()
    visit_start = text.rindex("{", 0, text.index('"store_id": ""'))  # the line where that visit begins
    assert error.line == text[:visit_start].count("\n") + 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"count": 3, "visits": []}', "count: 3 does not match the number of visits (0)"),
        (b'{"visits": []}', "count: required"),
        (b'{"count": 0}', "visits: required"),
        (b'{"count": 1, "visits": [{"store_id": "A"}', "not valid JSON"),
        (b'{"count": 1, "visits": [], "visits": []}', "visits: given twice"),
        (b'{"count": 0, "visits": []} {}', "more after"),
    ],
)
def test_json_document_structure(data, message):
    with pytest.raises(ManifestInvalid, match=re.escape(message)):
        entries("json", data)


def test_json_document_callback_url_is_read_and_checked():
    _, reader = entries("json", as_json(callback_url="https://example.com/hook"))
    assert reader.callback_url == "https://example.com/hook"
    with pytest.raises(ManifestInvalid, match="callback_url: must not contain credentials"):
        entries("json", as_json(callback_url="https://u:p@example.com/hook"))


def test_images_beyond_the_bound_stop_reading():
    with pytest.raises(ManifestInvalid, match="more than 3 images") as caught:
        entries("csv", as_csv(VISITS * 2), max_images=3)
    assert caught.value.line == 5


def test_an_overlong_line_is_skipped_without_holding_it():
    data = b"store_id,image_url,visit_time\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\n"
    with pytest.raises(ManifestInvalid, match="line 2: longer than"):
        list(read("csv", [data[i : i + 65536] for i in range(0, len(data), 65536)], max_images=10))


@pytest.mark.parametrize(
    "head",
    [b"", b"   ", b"hello world\n", b"a,b,c\n1,2,3\n"],
)
def test_sniff_refuses_what_is_not_a_manifest(head):
    with pytest.raises(ManifestInvalid):
        sniff(head)


def test_sniff_tells_json_lines_from_a_one_line_json_document():
    assert sniff(json.dumps({"count": 1, "visits": VISITS[:1]}).encode()) == "json"
    assert sniff(as_jsonl()) == "jsonl"
    assert sniff(b"\xef\xbb\xbfStore_ID, image_url ,VISIT_TIME,extra\n") == "csv"
