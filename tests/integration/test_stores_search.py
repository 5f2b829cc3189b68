"""GET /api/stores: Store Master search, case-insensitive and forgiving, ranked."""

from __future__ import annotations

import pytest
from harness import SHARED_STORE_MASTER

from retail_pulse.domain.errors import DomainError
from retail_pulse.domain.store_master import parse_store_master
from retail_pulse.logic.stores import search_stores

CSV = """AreaCode,StoreName,StoreID
1,BASANA PAN GHAR,S01
1,Pan Paradise,S02
1,PAN CORNER,S03
2,Corner Pan Shop,S04
2,"Pan Corner, Station Road",S05
2,Sample Kirana,S06
1,Paan Corner,S07
1,Softy Corner,S08
"""


@pytest.fixture
def master():
    return parse_store_master(CSV)


def ids(body: dict) -> list[str]:
    return [r["store_id"] for r in body["results"]]


def test_pan_corner_ranking(master):
    body = search_stores("pan corner", None, None, stores=master)
    ranked = ids(body)
    assert ranked[:2] == ["S03", "S05"]  # the name itself, then a name starting with it
    assert ranked.index("S04") < ranked.index("S02")  # both words beat one word
    assert ranked.index("S07") < ranked.index("S02")  # "paan" is close to "pan"
    assert ranked.index("S02") < ranked.index("S01")  # starts with "pan"
    assert "S06" not in ranked and body["total"] == len(ranked) == 7
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("q", ["PAN CORNER", "Pan Corner", "  pan   corner ", "pan cornr", "pan-corner"])
def test_case_spacing_punctuation_and_typos(master, q):
    assert ids(search_stores(q, None, None, stores=master))[0] == "S03"


def test_similar_words_and_store_ids(master):
    assert ids(search_stores("paradis", None, None, stores=master)) == ["S02"]
    assert ids(search_stores("kirana", None, None, stores=master)) == ["S06"]
    assert ids(search_stores("s06", None, None, stores=master))[0] == "S06"
    assert ids(search_stores("nothing like it", None, None, stores=master)) == []


def test_area_filter_limit_and_listing(master):
    assert set(ids(search_stores("pan corner", "2", None, stores=master))) == {"S04", "S05"}
    assert (
        ids(search_stores("corner", None, "2", stores=master))
        == ids(search_stores("corner", None, 20, stores=master))[:2]
    )
    listing = search_stores(None, "1", None, stores=master)
    assert listing["total"] == 5 and "score" not in listing["results"][0]
    for q, area, limit in (("pan", "9", None), ("pan", None, "0"), ("pan", None, "101"), ("!!!", None, None)):
        with pytest.raises(DomainError):
            search_stores(q, area, limit, stores=master)


def test_search_through_the_handler(stack, tmp_path, monkeypatch):
    path = tmp_path / "stores.csv"
    path.write_text(CSV)
    monkeypatch.setenv("STORE_MASTER_URI", str(path))
    stack.reset_caches()
    status, body = stack.api("GET", "/api/stores", query={"q": "pan corner", "limit": 3})
    assert status == 200, body
    assert [r["store_id"] for r in body["results"]] == ["S03", "S05", "S04"]
    assert body["results"][1] == {
        "store_id": "S05",
        "store_name": "Pan Corner, Station Road",
        "area": "2",
        "score": body["results"][1]["score"],
    }
    assert body["total"] == 7
    status, body = stack.api("GET", "/api/stores", query={"q": "pan", "area": "404"})
    assert status == 400 and "area" in body["error"]
    status, body = stack.api("GET", "/api/stores", query={"q": "pan", "limit": "1000"})
    assert status == 400 and "limit" in body["error"]


@pytest.mark.skipif(not SHARED_STORE_MASTER.exists(), reason="../shared/data/StoreMasterAssignment.csv not present")
def test_real_store_master_search():
    master = parse_store_master(SHARED_STORE_MASTER.read_bytes())
    body = search_stores("softy corner", None, 5, stores=master)
    names = [r["store_name"] for r in body["results"]]
    assert all("SOFTY CORNER" in n.upper() for n in names[:3]), names
    assert ids(search_stores("a.a entp", None, 1, stores=master)) == ["RP00893"]
    assert ids(search_stores("nikita store 2", "7100015", 1, stores=master)) == ["RP04944"]
