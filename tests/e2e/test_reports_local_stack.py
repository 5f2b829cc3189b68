"""Visits, stores and reports end to end through the local stack (the real Store Master when present)."""

from __future__ import annotations

import pytest
from harness import SHARED_STORE_MASTER, make_image

from local_stack.runner import start_local_stack


@pytest.fixture(scope="module")
def real_master_stack(tmp_path_factory):
    """A stack on ../shared/data/StoreMasterAssignment.csv, given the way a user would: a relative path."""
    if not SHARED_STORE_MASTER.exists():
        pytest.skip("../shared/data/StoreMasterAssignment.csv not present")
    stack = start_local_stack(
        tmp_path_factory.mktemp("real-master"),
        "--warm",
        "1",
        "--env",
        "PROCESSING_DELAY_MIN_S=0",
        "PROCESSING_DELAY_MAX_S=0.02",
        env={"STORE_MASTER_URI": "../shared/data/StoreMasterAssignment.csv"},
    )
    yield stack
    stack.stop()


def test_visits_and_reports_of_two_areas_through_the_local_stack(real_master_stack, image_server):
    small = image_server.add("/rep-e2e/s.png", make_image("PNG", 10, 20), "image/png")
    big = image_server.add("/rep-e2e/b.jpg", make_image("JPEG", 300, 100))
    missing = image_server.url("/rep-e2e/missing.jpg")
    visits = [
        # RP00893 ("A.A ENTP," with a comma) is in area 7000129; RP04944 is the file's last row (7100015).
        {"store_id": "RP00893", "image_url": [small, big], "visit_time": "2024-03-15T23:30:00-01:00"},
        {"store_id": "RP04944", "image_url": [big, missing], "visit_time": "2024-03-17T08:00:00Z"},
        {"store_id": "RP04944", "image_url": [small], "visit_time": "2024-03-18T08:00:00Z"},
    ]
    job = real_master_stack.wait(real_master_stack.submit(visits), timeout=60)
    assert job["progress"] == {"total": 5, "processed": 5, "succeeded": 4, "failed": 1}

    get = real_master_stack.get
    comma = get("/api/visits", area="7000129", storeid="RP00893").json()["results"]
    assert comma == [
        {
            "store_id": "RP00893",
            "area": "7000129",
            "store_name": "A.A ENTP,",
            "data": [{"date": "2024-03-16", "perimeter": [60, 800]}],  # 23:30 at -01:00 is the 16th in UTC
        }
    ]
    last = get("/api/visits", area="7100015", storeid="RP04944", startdate="2024-03-17", enddate="2024-03-17")
    assert [d["perimeter"] for d in last.json()["results"][0]["data"]] == [[800]]
    assert get("/api/visits", area="7100015", storeid="RP00893").status_code == 400  # not in that area
    assert get("/api/visits", area="0000000").status_code == 400

    areas = {a["area"]: a for a in get("/api/reports/areas").json()["areas"]}
    assert (areas["7000129"]["images"], areas["7000129"]["failed_images"]) == (2, 0)
    assert (areas["7100015"]["images"], areas["7100015"]["failed_images"], areas["7100015"]["visits"]) == (3, 1, 2)
    found = get("/api/stores", q="a.a entp").json()["results"]
    assert found[0]["store_id"] == "RP00893"
