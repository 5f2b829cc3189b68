"""Counts exact: after a run, every job, result and report counter read back from moto (without the
limits model), checked against what was submitted. Every image of the model is a good image, so a
failed result is a good image recorded failed.

New path: the product's own read code (DynamoJobRepository.get_job / all_results,
DynamoReportRepository.area_counters / store_counters). Today's path: its items read directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Verified:
    jobs: int = 0
    images: int = 0
    succeeded: int = 0  # by the job counters
    failed: int = 0  # by the job counters: good images recorded failed
    results: int = 0  # result items found
    failed_results: int = 0
    finished_at: list[float | None] = field(default_factory=list)  # modelled, per job
    steady_rate: float = float("nan")
    storage_bytes_per_image: float = 0.0  # result item + its GSI entries, with DynamoDB's 100 B each
    mismatches: list[str] = field(default_factory=list)


PROJECTED = ("store_id", "visit_time_utc", "status", "perimeter")  # the visit indexes' INCLUDE


def storage_bytes(results: list[dict], indexes: list[tuple[str, str]]) -> float:
    """Mean billed storage of a result: its size + 100 B, and per GSI entry its keys, the table's keys
    and the projected attributes + 100 B (DynamoDB's per-item overhead, on tables and indexes)."""
    from local_stack.dynamodb_items import item_size
    from retail_pulse.adapters.dynamodb.items import to_item

    sample = results[:: max(1, len(results) // 500)]
    if not sample:
        return 0.0
    total = 0
    for item in sample:
        total += item_size(to_item(item)) + 100
        for hash_key, range_key in indexes:
            if hash_key in item:
                entry = {k: item[k] for k in ("pk", "sk", hash_key, range_key, *PROJECTED) if k in item}
                total += item_size(to_item(entry)) + 100
    return total / len(sample)


def _steady_rate(times: list[float]) -> float:
    """Images per modelled second between the 10th and the 90th percentile of results measured."""
    if len(times) < 20:
        return float("nan")
    times = sorted(times)
    low, high = times[len(times) // 10], times[len(times) * 9 // 10]
    return (len(times) * 0.8) / (high - low) if high > low else float("nan")


def _areas_expected(submitted: dict[str, tuple[int, int]], results: list[dict], stores: Any) -> dict[str, list[int]]:
    """Area -> [images, visits, failed]: images and visits as submitted, failed as the results say."""
    out: dict[str, list[int]] = {area: [images, visits, 0] for area, (images, visits) in submitted.items()}
    for item in results:
        store = stores.get(item["store_id"])
        if store is not None and store.area_code and item["status"] == "failed":
            out.setdefault(store.area_code, [0, 0, 0])[2] += 1
    return out


def _check_job(out: Verified, job_id: str, job: dict | None, found: list[dict], spec: Any, clock: Any) -> None:  # noqa: PLR0917
    out.jobs += 1
    out.images += spec.images_per_job
    if job is None:
        out.mismatches.append(f"job {job_id}: no job item")
        out.finished_at.append(None)
        return
    out.succeeded += int(job["succeeded"])
    out.failed += int(job["failed"])
    out.results += len(found)
    failed = sum(1 for r in found if r["status"] == "failed")
    out.failed_results += failed
    finished = job.get("finished_at")
    out.finished_at.append(clock.modelled_at(finished) if finished else None)
    total = int(job["total"])
    checks = {
        "total": (total, spec.images_per_job),
        "succeeded + failed": (int(job["succeeded"]) + int(job["failed"]), total),
        "results": (len(found), total),
        "failed results": (failed, int(job["failed"])),
        "status": (job["status"], "failed" if int(job["failed"]) else "completed"),
    }
    for name, (got, want) in checks.items():
        if got != want:
            out.mismatches.append(f"job {job_id[:8]}: {name} = {got}, expected {want}")


def _check_reports(out: Verified, got: dict[str, list[int]], want: dict[str, list[int]]) -> None:
    for area in sorted(set(got) | set(want)):
        g, w = got.get(area, [0, 0, 0]), want.get(area, [0, 0, 0])
        for name, a, b in zip(("images", "visits", "failed"), g, w, strict=True):
            if a != b:
                out.mismatches.append(f"report area {area}: {name} = {a}, expected {b}")


def verify_new(  # noqa: PLR0917 - one run's context
    plain: Any, table: str, job_ids: list[str], spec: Any, stores: Any, clock: Any, submitted: dict
) -> Verified:
    from retail_pulse.adapters.dynamodb.reports import DynamoReportRepository
    from retail_pulse.adapters.dynamodb.repository import DynamoJobRepository

    jobs = DynamoJobRepository(table, client=plain)
    reports = DynamoReportRepository(table, client=plain)
    out = Verified()
    every: list[dict] = []
    for job_id in job_ids:
        job = jobs.job_item(job_id)
        found = list(jobs.all_results(job_id))
        every += found
        _check_job(out, job_id, job, found, spec, clock)
    want = _areas_expected(submitted, every, stores)
    got: dict[str, list[int]] = {}
    clients = ["", *reports.clients()]  # every client's counters, as an admin's report sums them
    for area in want:
        c = reports.area_counters(area, clients)
        got[area] = [c.images, c.visits, c.failed]
        by_store = reports.store_counters(area, None, clients)
        if sum(s.images for s in by_store.values()) != c.images:
            out.mismatches.append(f"report area {area}: its stores' images do not add up to the area's")
    _check_reports(out, got, want)
    out.steady_rate = _steady_rate([clock.modelled_at(r["processed_at"]) for r in every])
    out.storage_bytes_per_image = storage_bytes(every, [("visit_area", "visit_area_sk")])
    return out


def _query_all(plain: Any, **kwargs: Any) -> list[dict]:
    from retail_pulse.adapters.dynamodb.items import from_item

    out = []
    while True:
        resp = plain.query(**kwargs)
        out += [from_item(i) for i in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            return out
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def verify_old(  # noqa: PLR0917 - one run's context
    plain: Any, table: str, job_ids: list[str], spec: Any, stores: Any, clock: Any, submitted: dict
) -> Verified:
    from retail_pulse.adapters.dynamodb.items import from_item

    out = Verified()
    every: list[dict] = []
    for job_id in job_ids:
        resp = plain.get_item(TableName=table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}})
        job = from_item(resp["Item"]) if "Item" in resp else None
        found = _query_all(
            plain,
            TableName=table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :img)",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":img": {"S": "IMG#"}},
        )
        every += found
        _check_job(out, job_id, job, found, spec, clock)
    want = _areas_expected(submitted, every, stores)
    got: dict[str, list[int]] = {}
    for area in want:
        items = _query_all(
            plain,
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"REPORT#{area}"}},
        )
        areas = [i for i in items if i["sk"].startswith("AREA#")]
        got[area] = [sum(int(i.get(k, 0)) for i in areas) for k in ("images", "visits", "failed")]
        store_images = sum(int(i.get("images", 0)) for i in items if i["sk"].startswith("STORE#"))
        if store_images != got[area][0]:
            out.mismatches.append(f"report area {area}: its stores' images do not add up to the area's")
    _check_reports(out, got, want)
    out.steady_rate = _steady_rate([clock.modelled_at(r["processed_at"]) for r in every])
    out.storage_bytes_per_image = storage_bytes(
        every, [("visit_store", "visit_store_sk"), ("visit_area", "visit_area_sk")]
    )
    return out
