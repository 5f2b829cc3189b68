"""Progress you can plan with: throughput, ETA, phases and cost of a job, from the counters and
timestamps on its item (moved once per counted run, never per image). No AWS here.

Cost: each result carries its share of the process_image invocation that measured it (GB-ms of the
invocation's wall time over its images, and 1/n of the request); the counting transaction sums them
on the job. The USD estimate prices that with PRICES (us-east-1 on-demand, free tiers ignored) and
models the per-image requests of the queue and the table (README "Cost per 1,000 images")."""

from __future__ import annotations

from datetime import datetime

from retail_pulse.domain.fanout import ENQUEUING
from retail_pulse.domain.models import Job

# us-east-1 on-demand list prices (USD), as in README "Cost per 1,000 images".
PRICES = {
    "lambda_gb_s": 0.0000166667,
    "lambda_request": 0.20 / 1_000_000,
    "sqs_request": 0.40 / 1_000_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,
}
# Modelled per ended image (not measured per job): SQS send, receive and delete in batches of 10;
# DynamoDB: the result Put, its visit-index entry and a share of the counting transaction.
SQS_REQUESTS_PER_IMAGE = 0.3
WRITE_UNITS_PER_IMAGE = 2.1
PROCESS_MEMORY_GB = 0.5  # ProcessImageFunction's MemorySize (template Globals), for the in-flight estimate
RATE_MARK_EVERY_S = 30  # the recent rate's window starts 30 to 60 s back (the rate marks move every 30 s)


def _seconds(later: str, earlier: str) -> float:
    return (_parse(later) - _parse(earlier)).total_seconds()


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def processed_by_processing(job: Job) -> int:
    """Images ended by processing (not at submit, not cancelled or skipped)."""
    return job.succeeded + job.failed


def throughput(job: Job, now: str) -> dict:
    """Images per minute over the last minute (between the older rate mark and now) and overall
    (from `started_at` to the last progress, or now while running)."""
    done = processed_by_processing(job)
    overall = recent = None
    if job.started_at:
        end = job.progressed_at if job.status not in ("ongoing", "paused") else now
        span = _seconds(end or now, job.started_at)
        if span > 0:
            overall = round(done * 60 / span, 1)
    mark = job.rate_mark_before or job.rate_mark
    if job.status == "ongoing" and mark:
        span = _seconds(now, mark[0])
        if span > 0:
            recent = round(max(0, done - mark[1]) * 60 / span, 1)
    elif job.status == "paused":
        recent = 0.0
    return {"recent_per_min": recent, "overall_per_min": overall}


def eta(job: Job, rates: dict, now: str) -> dict:
    """Seconds left at the recent rate (else the overall one) and the moment that makes; None when
    it cannot be told (nothing measured yet, or paused)."""
    if job.status not in ("ongoing",):
        return {"eta_s": 0 if job.status not in ("paused",) else None, "eta_at": None}
    rate = rates["recent_per_min"] or rates["overall_per_min"]
    if not rate:
        return {"eta_s": None, "eta_at": None}
    seconds = round(job.remaining * 60 / rate)
    at = _parse(now).timestamp() + seconds
    return {"eta_s": seconds, "eta_at": datetime.fromtimestamp(at, _parse(now).tzinfo).isoformat(timespec="seconds")}


def phases(job: Job, rates: dict) -> dict:
    """to_enqueue / queued / in_flight / ended. `to_enqueue`: images of a fanned-out job that its
    fan-out has not enqueued yet (phase `enqueuing`: not in the queue, so not `queued`). `in_flight`
    is estimated by Little's law (recent rate x mean processing time per image, at most what is in
    the queue): counting it exactly would take a write per batch to the job, which the write path
    does not make."""
    ended = job.processed
    to_enqueue = max(0, job.total - job.enqueued) if job.phase == ENQUEUING else 0
    remaining = max(0, job.total - ended - to_enqueue)
    in_flight = 0
    rate = rates["recent_per_min"] if job.status == "ongoing" else 0
    if rate and job.gb_ms and job.request_milli:
        # An image is in flight for its whole invocation: mean invocation time from GB-ms and requests.
        invocation_s = job.gb_ms / PROCESS_MEMORY_GB / 1000 / (job.request_milli / 1000)
        in_flight = min(remaining, round(rate / 60 * invocation_s))
    return {"to_enqueue": to_enqueue, "queued": remaining - in_flight, "in_flight": in_flight, "ended": ended}


def cost(job: Job) -> dict:
    gb_s = job.gb_ms / 1000
    requests = job.request_milli / 1000
    images = processed_by_processing(job)
    usd = (
        gb_s * PRICES["lambda_gb_s"]
        + requests * PRICES["lambda_request"]
        + images * SQS_REQUESTS_PER_IMAGE * PRICES["sqs_request"]
        + images * WRITE_UNITS_PER_IMAGE * PRICES["dynamodb_write_unit"]
    )
    return {
        "gb_s": round(gb_s, 3),
        "requests": round(requests, 1),
        "bytes_downloaded": job.bytes_downloaded,
        "usd": round(usd, 6),
    }


def plan(job: Job, now: str) -> dict:
    """The status fields of item 4 of the job-control issue, computed from the job item alone."""
    rates = throughput(job, now)
    return {
        "started_at": job.started_at,
        "throughput": rates,
        **eta(job, rates, now),
        "phases": phases(job, rates),
        "cost": cost(job),
    }
