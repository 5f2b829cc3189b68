"""Visits, stores and reports through the handlers: moto tables built from template.yaml, real
images over HTTP, real SQS event shapes."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import boto3
import pytest
from harness import SHARED_STORE_MASTER, make_image

from retail_pulse import handler_kit
from retail_pulse.domain.messages import task_from_message
from retail_pulse.domain.models import ReportCounters, Tally
from retail_pulse.domain.tenancy import DEFAULT_CLIENT as CLIENT

SIZES = {"a": (10, 20), "b": (31, 40), "c": (57, 61), "d": (73, 80), "e": (101, 7)}
AREA_A, AREA_B = "7100015", "7000129"  # the sample Store Master: RP00001-05 and RP00006-10


@pytest.fixture
def imgs(image_server):
    urls = {n: image_server.add(f"/rep/{n}.png", make_image("PNG", w, h), "image/png") for n, (w, h) in SIZES.items()}
    urls["missing"] = image_server.url("/rep/missing.png")
    return urls


def perimeter_of(name: str) -> int | None:
    return 2 * sum(SIZES[name]) if name in SIZES else None


# Jobs across two areas and several dates. (store_id, visit_time as submitted, UTC date, images)
JOB_1 = [
    ("RP00001", "2024-03-15T10:00:00Z", "2024-03-15", ["a", "b"]),
    ("RP00001", "2024-03-16T23:30:00-02:00", "2024-03-17", ["c"]),  # a later UTC date
    ("RP00002", "2024-03-15T12:00:00+05:30", "2024-03-15", ["a", "missing"]),
    ("RP00006", "2024-03-15T00:00:00Z", "2024-03-15", ["d"]),
    ("RP99999", "2024-03-15T10:00:00Z", "2024-03-15", ["a"]),  # not in the Store Master
]
JOB_2 = [
    ("RP00001", "2024-03-15T20:00:00Z", "2024-03-15", ["d", "e"]),
    ("RP00003", "2024-03-20T23:59:59.999Z", "2024-03-20", ["e"]),
    ("RP00007", "2024-03-18T08:00:00+00:00", "2024-03-18", ["b", "c", "missing"]),
    ("RP00002", "2024-03-16T00:00:00+05:30", "2024-03-15", ["missing"]),  # only a failed image
]
AREAS = {f"RP0000{i}": AREA_A for i in range(1, 6)} | {f"RP{i:05d}": AREA_B for i in range(6, 11)}


def submit(stack, imgs, visits) -> str:
    body = [{"store_id": s, "visit_time": t, "image_url": [imgs[n] for n in names]} for s, t, _, names in visits]
    return stack.submit_job(body)


def expected_visits(visits, area, store=None, start="0000", end="9999"):
    """What /api/visits must answer, from the test's own table (start/end: UTC date strings)."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for store_id, _, day, names in visits:
        if AREAS.get(store_id) != area or (store and store_id != store) or not start <= day <= end:
            continue
        out[store_id][day] += [p for p in map(perimeter_of, names) if p is not None]
    return {s: {d: sorted(p) for d, p in days.items()} for s, days in out.items()}


def visits_of(stack, **query) -> dict:
    """All pages of /api/visits merged into {store_id: {date: sorted perimeters}}."""
    merged: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    token = None
    while True:
        q = {k: v for k, v in query.items() if v is not None} | ({"next_token": token} if token else {})
        status, page = stack.api("GET", "/api/visits", query=q)
        assert status == 200, page
        for entry in page["results"]:
            assert entry["area"] == query["area"]
            merged[entry["store_id"]]  # a store asked for is listed even without visits
            for d in entry["data"]:
                merged[entry["store_id"]][d["date"]] += d["perimeter"]
        token = page["next_token"]
        if not token:
            return {s: {d: sorted(p) for d, p in days.items()} for s, days in merged.items()}


@pytest.fixture
def two_jobs(stack, imgs):
    submit(stack, imgs, JOB_1)
    submit(stack, imgs, JOB_2)
    stack.drain()
    return JOB_1 + JOB_2


def test_visits_per_area_and_store(stack, two_jobs):
    for area in (AREA_A, AREA_B):
        assert visits_of(stack, area=area) == expected_visits(two_jobs, area)
    assert visits_of(stack, area=AREA_A, storeid="RP00001") == expected_visits(two_jobs, AREA_A, "RP00001")
    # A date whose only image failed is still a visit date, with no perimeters.
    assert visits_of(stack, area=AREA_A, storeid="RP00002")["RP00002"]["2024-03-15"] == [perimeter_of("a")]
    assert visits_of(stack, area=AREA_A, storeid="RP00004") == {"RP00004": {}}  # no visits: empty data
    _, page = stack.api("GET", "/api/visits", query={"area": AREA_A, "storeid": "RP00001"})
    [entry] = page["results"]
    assert entry["store_name"] == "Sample Corner Store" and entry["area"] == AREA_A
    assert [d["date"] for d in entry["data"]] == ["2024-03-15", "2024-03-17"]


def test_visit_dates_are_inclusive_utc_bounds(stack, two_jobs):
    def check(start, end, start_day, end_day, *, area=AREA_A, store=None):
        got = visits_of(stack, area=area, storeid=store, startdate=start, enddate=end)
        want = expected_visits(two_jobs, area, store, start_day, end_day)
        assert {s: d for s, d in got.items() if d} == want, (start, end)

    check("2024-03-15", "2024-03-15", "2024-03-15", "2024-03-15")  # a date-only end covers the whole day
    check("2024-03-17", None, "2024-03-17", "9999")
    check(None, "2024-03-16", "0000", "2024-03-16")
    check("2024-03-20", "2024-03-20", "2024-03-20", "2024-03-20")  # 23:59:59.999 is in its day
    check("2024-03-18", "2024-03-18", "2024-03-18", "2024-03-18", area=AREA_B)
    # Date-time bounds are inclusive, compared in UTC whatever the offset.
    exact = visits_of(stack, area=AREA_A, storeid="RP00001", startdate="2024-03-16T19:30:00-06:00")
    assert exact["RP00001"] == {"2024-03-17": [perimeter_of("c")]}  # 2024-03-17T01:30Z itself
    just_after = visits_of(stack, area=AREA_A, storeid="RP00001", startdate="2024-03-17T01:30:00.001Z")
    assert just_after == {"RP00001": {}}
    upto = visits_of(stack, area=AREA_A, storeid="RP00001", enddate="2024-03-15T15:30:00+05:30")  # 10:00Z
    assert upto["RP00001"] == {"2024-03-15": sorted([perimeter_of("a"), perimeter_of("b")])}


def test_visits_page_with_opaque_tokens(stack, two_jobs):
    want = expected_visits(two_jobs, AREA_A)
    assert visits_of(stack, area=AREA_A, limit=1) == want
    assert visits_of(stack, area=AREA_A, limit=2) == want
    assert visits_of(stack, area=AREA_A, storeid="RP00001", limit=1) == expected_visits(two_jobs, AREA_A, "RP00001")
    status, page = stack.api("GET", "/api/visits", query={"area": AREA_A, "limit": 3})
    assert status == 200 and page["next_token"]
    token = page["next_token"]
    for query in (
        {"area": AREA_A, "next_token": "not-a-token"},
        {"area": AREA_A, "next_token": token + "x"},
        {"area": AREA_A, "storeid": "RP00001", "next_token": token},  # from another query
        {"area": AREA_A, "startdate": "2024-03-16", "next_token": token},
    ):
        status, body = stack.api("GET", "/api/visits", query=query)
        assert status == 400 and "next_token" in body["error"], (query, body)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({}, "area"),
        ({"area": "999"}, "area"),
        ({"area": AREA_A, "storeid": "RP99999"}, "storeid"),
        ({"area": AREA_A, "storeid": "RP00006"}, "not 7100015"),
        ({"area": AREA_A, "startdate": "2024-13-01"}, "startdate"),
        ({"area": AREA_A, "startdate": "yesterday"}, "startdate"),
        ({"area": AREA_A, "enddate": "2024-03-15T25:00:00Z"}, "enddate"),
        ({"area": AREA_A, "enddate": "15/03/2024"}, "enddate"),
        ({"area": AREA_A, "startdate": "2024-03-16", "enddate": "2024-03-15"}, "enddate"),
        ({"area": AREA_A, "startdate": "2024-03-15T10:00:01Z", "enddate": "2024-03-15T10:00:00Z"}, "enddate"),
        ({"area": AREA_A, "limit": "0"}, "limit"),
        ({"area": AREA_A, "limit": "many"}, "limit"),
    ],
)
def test_visit_query_errors(stack, query, fragment):
    status, body = stack.api("GET", "/api/visits", query=query)
    assert status == 400, body
    assert fragment in body["error"]


def test_visit_query_uses_the_indexes_never_a_scan(stack, two_jobs, monkeypatch):
    repo = handler_kit.reports()
    calls = []
    original = repo.client.query

    def query(**kwargs):
        calls.append(kwargs.get("IndexName"))
        return original(**kwargs)

    monkeypatch.setattr(repo.client, "query", query)
    monkeypatch.setattr(repo.client, "scan", lambda **_: pytest.fail("scan"))
    visits_of(stack, area=AREA_A)
    visits_of(stack, area=AREA_A, storeid="RP00001")
    assert set(calls) == {"VisitsByArea"}
    # Sparse: only results of Store Master stores are indexed (not RP99999's).
    ddb = boto3.client("dynamodb")
    table = stack.stack.refs["JobsTable"]
    indexed = ddb.scan(TableName=table, IndexName="VisitsByArea")["Items"]
    assert {i["store_id"]["S"] for i in indexed} == {s for s, *_ in two_jobs if s in AREAS}
    assert len(indexed) == sum(len(names) for s, _, _, names in two_jobs if s in AREAS)


# -- reports --------------------------------------------------------------------------------


def expected_reports(visits) -> tuple[dict, dict]:
    areas: dict = defaultdict(lambda: {"visits": 0, "images": 0, "failed_images": 0, "days": set()})
    stores: dict = defaultdict(lambda: {"visits": 0, "images": 0, "failed_images": 0, "days": set()})
    for store_id, _, day, names in visits:
        if store_id not in AREAS:
            continue  # unknown stores have no area: left out
        for target in (areas[AREAS[store_id]], stores[store_id]):
            target["visits"] += 1
            target["images"] += len(names)
            target["failed_images"] += sum(1 for n in names if n not in SIZES)
            target["days"].add(day)
    return areas, stores


def check_reports(stack, visits) -> None:
    want_areas, want_stores = expected_reports(visits)
    status, body = stack.api("GET", "/api/reports/areas")
    assert status == 200, body
    got_areas = {a["area"]: a for a in body["areas"]}
    assert set(got_areas) == {AREA_A, AREA_B}
    for area, got in got_areas.items():
        want = want_areas[area]
        assert got["stores"] == 5
        assert (got["visits"], got["images"], got["failed_images"]) == (
            want["visits"],
            want["images"],
            want["failed_images"],
        ), area
        assert got["failure_rate"] == round(want["failed_images"] / want["images"], 4)
        assert got["last_visit"] == max(want["days"])
        assert got["mean_processing_ms"] is not None and got["mean_processing_ms"] >= 0
    for area in (AREA_A, AREA_B):
        status, body = stack.api("GET", "/api/reports/stores", query={"area": area})
        assert status == 200, body
        got = {s["store_id"]: s for s in body["stores"]}
        expected = {s: v for s, v in want_stores.items() if AREAS[s] == area}
        assert set(got) == set(expected)
        assert body["stores_in_area"] == 5 and body["stores_reported"] == len(expected)
        for store_id, want in expected.items():
            entry = got[store_id]
            assert (entry["visits"], entry["images"], entry["failed_images"], entry["last_visit"]) == (
                want["visits"],
                want["images"],
                want["failed_images"],
                max(want["days"]),
            ), store_id
            assert entry["area"] == area and entry["store_name"].startswith("Sample")


def test_reports_count_what_was_processed(stack, two_jobs):
    check_reports(stack, two_jobs)
    status, body = stack.api("GET", "/api/reports/stores", query={"area": AREA_A, "storeid": "RP00004"})
    assert status == 200
    assert body["stores"] == [
        {
            "store_id": "RP00004",
            "store_name": "Sample Traders, North",
            "area": AREA_A,
            "visits": 0,
            "images": 0,
            "failed_images": 0,
            "failure_rate": None,
            "mean_processing_ms": None,
            "last_visit": None,
        }
    ]
    for query in ({}, {"area": "1"}, {"area": AREA_B, "storeid": "RP00001"}):
        status, body = stack.api("GET", "/api/reports/stores", query=query)
        assert status == 400, (query, body)


def test_report_counters_exact_when_every_message_is_delivered_twice(stack, imgs):
    submit(stack, imgs, JOB_1)
    submit(stack, imgs, JOB_2)
    messages = []
    while batch := stack.receive():
        messages += batch
    assert len({m["MessageId"] for m in messages}) == sum(len(n) for s, _, _, n in JOB_1 + JOB_2 if s in AREAS)
    deliveries = list(reversed(messages)) + messages
    for start in range(0, len(deliveries), 6):
        assert stack.invoke_process(deliveries[start : start + 6]) == set()
    check_reports(stack, JOB_1 + JOB_2)
    # ... and once more, a whole batch again: nothing moves.
    assert stack.invoke_process(messages[:10]) == set()
    check_reports(stack, JOB_1 + JOB_2)
    assert visits_of(stack, area=AREA_A) == expected_visits(JOB_1 + JOB_2, AREA_A)


def test_reports_outlive_jobs_and_shard_their_counters(stack, two_jobs):
    ddb = boto3.client("dynamodb")
    items = ddb.scan(TableName=stack.stack.refs["JobsTable"])["Items"]
    report_items = [i for i in items if i["pk"]["S"].startswith("CREPORT#")]
    assert report_items and all("expires_at" not in i for i in report_items)
    assert all("expires_at" in i for i in items if i["pk"]["S"].startswith("JOB#"))
    assert {i["sk"]["S"][:5] for i in report_items} == {"AREA", "STORE"}
    # Client and shard are in the partition key: one client's area never shares another's budget.
    partitions = {i["pk"]["S"].rsplit("#", 1)[0] for i in report_items}
    assert partitions == {f"CREPORT#{CLIENT}#{AREA_A}", f"CREPORT#{CLIENT}#{AREA_B}"}


def test_no_report_item_grows_with_the_visits_it_counts(stack, imgs):
    """The old `days` set grew with every visit date; `last_visit` is one value, whatever the history."""
    days = [f"2024-0{m}-1{d}" for m in range(1, 4) for d in range(0, 3)]
    submit(stack, imgs, [("RP00001", f"{day}T10:00:00Z", day, ["a"]) for day in days])
    stack.drain()
    items = boto3.client("dynamodb").scan(TableName=stack.stack.refs["JobsTable"])["Items"]
    store_items = [i for i in items if i["sk"]["S"] == "STORE#RP00001"]
    assert store_items and all("days" not in i for i in store_items)
    _, body = stack.api("GET", "/api/reports/stores", query={"area": AREA_A, "storeid": "RP00001"})
    assert body["stores"][0]["last_visit"] == max(days)


def test_messages_carry_area_visit_time_and_first_image_and_old_ones_still_parse(stack, imgs):
    submit(stack, imgs, [("RP00003", "2024-03-15T12:00:00+05:30", "2024-03-15", ["a", "b"])])
    bodies = sorted((json.loads(m["Body"]) for m in stack.receive()), key=lambda b: b["index"])
    assert [(b["area"], b["visit_time_utc"], b.get("first_in_visit", False)) for b in bodies] == [
        (AREA_A, "2024-03-15T06:30:00.000Z", True),
        (AREA_A, "2024-03-15T06:30:00.000Z", False),
    ]
    old = {k: v for k, v in bodies[0].items() if k not in ("area", "visit_time_utc", "first_in_visit")}
    task = task_from_message(json.dumps(old))
    assert (task.area, task.visit_time_utc, task.first_in_visit) == (None, "2024-03-15T06:30:00.000Z", False)


# -- the real Store Master ----------------------------------------------------------------------

needs_real_master = pytest.mark.skipif(
    not SHARED_STORE_MASTER.exists(), reason="../shared/data/StoreMasterAssignment.csv not present"
)


@needs_real_master
def test_real_store_master_comma_name_and_last_row(stack, imgs, monkeypatch):
    monkeypatch.setenv("STORE_MASTER_URI", str(SHARED_STORE_MASTER))
    stack.reset_caches()
    visits = [
        ("RP00893", "2024-05-01T09:00:00Z", "2024-05-01", ["a", "missing"]),
        ("RP04944", "2024-05-02T09:00:00+05:30", "2024-05-02", ["b"]),
        ("RP04944", "2024-05-03T09:00:00Z", "2024-05-03", ["c", "d"]),
    ]
    submit(stack, imgs, visits)
    stack.drain()
    status, page = stack.api("GET", "/api/visits", query={"area": "7000129", "storeid": "RP00893"})
    assert status == 200, page
    assert page["results"] == [
        {
            "store_id": "RP00893",
            "area": "7000129",
            "store_name": "A.A ENTP,",
            "data": [{"date": "2024-05-01", "perimeter": [perimeter_of("a")]}],
        }
    ]
    status, page = stack.api("GET", "/api/visits", query={"area": "7100015", "startdate": "2024-05-02"})
    assert status == 200, page
    [entry] = page["results"]
    assert (entry["store_id"], entry["store_name"]) == ("RP04944", "Nikita Store 2")
    assert {d["date"]: sorted(d["perimeter"]) for d in entry["data"]} == {
        "2024-05-02": [perimeter_of("b")],
        "2024-05-03": sorted([perimeter_of("c"), perimeter_of("d")]),
    }
    status, body = stack.api("GET", "/api/visits", query={"area": "7100015", "storeid": "RP00893"})
    assert status == 400 and "not 7100015" in body["error"]
    status, body = stack.api("GET", "/api/reports/stores", query={"area": "7100015", "storeid": "RP04944"})
    [store] = body["stores"]
    assert (store["visits"], store["images"], store["last_visit"]) == (2, 3, "2024-05-03")
    status, body = stack.api("GET", "/api/reports/areas")
    by_area = {a["area"]: a for a in body["areas"]}
    assert by_area["7100015"]["stores"] == 3453 and by_area["7000129"]["stores"] == 1491
    assert (by_area["7000129"]["images"], by_area["7000129"]["failed_images"]) == (2, 1)
    status, body = stack.api("GET", "/api/stores", query={"q": "a.a entp"})
    assert body["results"][0]["store_id"] == "RP00893"
    status, body = stack.api("GET", "/api/stores", query={"q": "rp04944"})
    assert body["results"][0] == {
        "store_id": "RP04944",
        "store_name": "Nikita Store 2",
        "area": "7100015",
        "score": 4.0,
    }


def test_a_last_visit_moved_under_a_counting_run_is_read_again_never_moved_back(stack, monkeypatch):
    """`last_visit` moves inside the counting transaction, on condition it is what the run read: a run
    whose read went stale (another shard's run moved the date further) is refused, reads again,
    and counts once without moving the date back."""
    counting, reports = handler_kit.jobs(), handler_kit.reports()

    def tally(day: str) -> Tally:
        return Tally(
            areas={(CLIENT, AREA_A): ReportCounters(images=1, visits=1, last_visit=day)},
            stores={(CLIENT, AREA_A, "RP00001"): ReportCounters(images=1, visits=1, last_visit=day)},
        )

    deadline = time.monotonic() + 30
    assert counting.apply("shardId-a", "1", "1", tally("2024-05-09"), deadline).applied
    fresh, reads = counting._last_visits, []

    def stale_once(keys, until):
        reads.append(len(keys))
        return {key: None for key in keys} if len(reads) == 1 else fresh(keys, until)

    monkeypatch.setattr(counting, "_last_visits", stale_once)
    assert counting.apply("shardId-a", "2", "2", tally("2024-05-03"), deadline).applied
    assert len(reads) == 2  # refused on the stale date, read again
    store = reports.store_counters(AREA_A, "RP00001", [CLIENT])["RP00001"]
    area = reports.area_counters(AREA_A, [CLIENT])
    assert (store.images, store.visits, store.last_visit) == (2, 2, "2024-05-09")
    assert (area.images, area.visits, area.last_visit) == (2, 2, "2024-05-09")
    assert counting.apply("shardId-a", "3", "3", tally("2024-05-12"), deadline).applied  # a later date moves
    assert reports.store_counters(AREA_A, "RP00001", [CLIENT])["RP00001"].last_visit == "2024-05-12"
