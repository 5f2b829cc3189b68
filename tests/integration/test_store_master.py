from __future__ import annotations

import boto3
import pytest
from harness import SHARED_STORE_MASTER

from retail_pulse.adapters.store_master_source import load_store_master
from retail_pulse.domain.store_master import parse_store_master
from retail_pulse.settings import SAMPLE_STORE_MASTER


def test_sample_store_master_holds_rp00001_to_rp00010():
    master = parse_store_master(SAMPLE_STORE_MASTER.read_bytes())
    assert all(f"RP{i:05d}" in master for i in range(1, 11))
    assert master.get("RP00004").name == "Sample Traders, North"


@pytest.mark.skipif(not SHARED_STORE_MASTER.exists(), reason="../shared/data/StoreMasterAssignment.csv not present")
def test_real_store_master_loads_every_store():
    master = load_store_master(str(SHARED_STORE_MASTER))
    assert len(master) == 4944
    assert master.get("RP00893").name == "A.A ENTP,"  # quoted comma
    last = master.get("RP04944")
    assert (last.name, last.area_code) == ("Nikita Store 2", "7100015")


@pytest.mark.parametrize(
    "raw",
    [
        b'\xef\xbb\xbfAreaCode,StoreName,StoreID\r\n1,"A, B",S1\r\n2,C,S2',
        b'AreaCode,StoreName,StoreID\n1,"A, B",S1\n2,C,S2\n',
        b'AreaCode,StoreName,StoreID\r\n1,"A, B",S1\r\n2,C,S2\r\n\r\n',
    ],
    ids=["bom-crlf-no-final-newline", "lf", "trailing-blank-line"],
)
def test_csv_variants(raw):
    master = parse_store_master(raw)
    assert len(master) == 2
    assert master.get("S1").name == "A, B" and master.get("S2").area_code == "2"


def test_missing_columns_rejected():
    with pytest.raises(ValueError, match="StoreID"):
        parse_store_master(b"AreaCode,StoreName\n1,A\n")


def test_s3_store_master_is_rechecked_by_etag(stack):
    s3 = boto3.client("s3")
    bucket = stack.stack.refs["DataBucket"]
    s3.put_object(Bucket=bucket, Key="stores.csv", Body=b"AreaCode,StoreName,StoreID\n1,A,S1\n")
    uri = f"s3://{bucket}/stores.csv"
    assert "S1" in load_store_master(uri, now=1000.0)
    s3.put_object(Bucket=bucket, Key="stores.csv", Body=b"AreaCode,StoreName,StoreID\n1,B,S2\n")
    assert "S2" not in load_store_master(uri, now=1030.0)  # within the minute: cached
    fresh = load_store_master(uri, now=1061.0)
    assert "S2" in fresh and "S1" not in fresh


def test_unknown_store_in_real_master_through_submit(stack, monkeypatch):
    if not SHARED_STORE_MASTER.exists():
        pytest.skip("real store master not present")
    monkeypatch.setenv("STORE_MASTER_URI", str(SHARED_STORE_MASTER))
    stack.reset_caches()
    visits = [
        {"store_id": "RP04944", "image_url": ["https://x/a.jpg"], "visit_time": "2024-03-15T10:00:00Z"},
        {"store_id": "RP04945", "image_url": ["https://x/b.jpg"], "visit_time": "2024-03-15T10:00:00Z"},
    ]
    job_id = stack.submit_job(visits)
    _, job = stack.api("GET", "/api/status", query={"jobid": job_id})
    assert [e["store_id"] for e in job["error"]] == ["RP04945"]
    assert stack.queue_depth() == 1
