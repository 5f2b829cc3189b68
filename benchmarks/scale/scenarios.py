"""What `make scale` runs: the scenarios, the Store Masters, the jobs' visits, and per run its size and
its time scale F.

Scenarios (from the issue): one 50,000-image job; 100 jobs of 5,000 at once with the real Store
Master (2 areas); the same with a 50-area Store Master. Each at modelled Lambda concurrency 20, 100
and 1,000, with today's write path and the new one. Jobs are visits of 10 images, each to a store
drawn at random from the Store Master, on a random day of the last 30.

Sizes: the full matrix is ~3.3 million modelled images, and this machine runs the handlers on moto at
a few hundred DynamoDB requests a second, so only some runs are at their real size (see `plan`):
the one run a target is about a whole job, one 50,000-image job at L = 1,000 on the new path, runs
whole (about 17 minutes here); elsewhere jobs are shortened (same number of jobs, fewer images each,
or one smaller job) where the figures reported are rates. Each shortened run says so in SCALE.md,
with the reason its figures stand.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REAL_STORE_MASTER = ROOT.parent / "shared" / "data" / "StoreMasterAssignment.csv"
IMAGES_PER_VISIT = 10
LAMBDA_MEMORY_MB = 512  # Globals: MemorySize
DOWNLOAD_LATENCY_S = 0.05  # modelled: a ~30 KB JPEG from an image host in the same region
TABLE_QUOTA_WCU = 40_000.0  # default per-table on-demand quota (account), reads likewise

# F per (path, modelled concurrency). The new path at L = 1,000 runs near the table's 40,000 WCU/s,
# ~17,000 images/s modelled: at F = 60 moto sees ~300 requests/s, about what this machine serves on
# one thread. Today's path tops out near 450 images/s whatever L, so a small F keeps it busy enough.
FACTORS = {
    ("new", 20): 6.0,
    ("new", 100): 20.0,
    ("new", 1000): 120.0,
    ("today", 20): 6.0,
    ("today", 100): 15.0,
    ("today", 1000): 20.0,
}
MODELLED_LIMIT_S = 20_000.0  # today's path waits out 360 s visibility timeouts, up to 5 receives each


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    jobs: int
    images_per_job: int
    store_master: str  # "real" (2 areas) or "50 areas"


SCENARIOS = (
    Scenario("one-job", "one 50,000-image job", 1, 50_000, "real"),
    Scenario("100-jobs", "100 jobs of 5,000 at once (real Store Master, 2 areas)", 100, 5_000, "real"),
    Scenario("100-jobs-50-areas", "100 jobs of 5,000 at once (50-area Store Master)", 100, 5_000, "50 areas"),
)
CONCURRENCY = (20, 100, 1000)
PATHS = ("today", "new")


@dataclass(frozen=True)
class RunSpec:
    scenario: Scenario
    path: str  # "today" or "new"
    concurrency: int
    factor: float
    jobs: int  # as run
    images_per_job: int  # as run
    shortened: str = ""  # why a smaller run stands for the scenario ("" = real size)
    stream_shards: int = 40  # table partitions at its capacity: 40,000 WCU/s / 1,000 per partition
    table_write_units: float = TABLE_QUOTA_WCU

    @property
    def images(self) -> int:
        return self.jobs * self.images_per_job

    @property
    def label(self) -> str:
        return f"{self.scenario.key} L={self.concurrency} {self.path}"


# Runs whose size differs from the scenario's: (scenario, concurrency, path) -> (jobs, images per job).
# This 2-core machine runs the handlers on moto at a few hundred DynamoDB requests a second, shared
# with other work: the whole matrix at full size (3.3 million modelled images) would take hours. The
# one run a target is about a job's own length, one 50,000-image job at L = 1,000 on the new path,
# runs whole; the others keep their number of jobs and concurrency and run fewer images per job.
SHORTENED = {
    ("one-job", 20, "new"): (1, 2_000),
    ("one-job", 20, "today"): (1, 2_000),
    ("one-job", 100, "new"): (1, 5_000),
    ("one-job", 100, "today"): (1, 3_000),
    ("one-job", 1000, "today"): (1, 2_000),
}
for _key in ("100-jobs", "100-jobs-50-areas"):
    SHORTENED |= {
        (_key, 20, "new"): (100, 20),
        (_key, 20, "today"): (100, 20),
        (_key, 100, "new"): (100, 50),
        (_key, 100, "today"): (100, 30),
        (_key, 1000, "new"): (100, 50),
        (_key, 1000, "today"): (100, 20),
    }
WHY_SHORTENED = (
    "images/s, WCU and conflicts per image are rates: at a given concurrency every batch in flight meets"
    " the same keys whatever the job's length, and the model reaches its steady state within its first"
    " modelled second (today's path within its first visibility timeout); completion times grow with"
    " a job's size and are given for the size run, and extrapolated (size / per-job rate) for the real one"
)


def plan(quick: bool = False, only: str | None = None) -> list[RunSpec]:
    runs = []
    # The runs the targets are about first (L = 1,000, the new path), so that an interrupted run
    # still has them; SCALE.md's tables keep their own order.
    for concurrency in sorted(CONCURRENCY, reverse=True):
        for scenario in SCENARIOS:
            for path in sorted(PATHS):
                full = (scenario.jobs, scenario.images_per_job)
                jobs, size = SHORTENED.get((scenario.key, concurrency, path), full)
                spec = RunSpec(scenario, path, concurrency, FACTORS[(path, concurrency)], jobs, size)
                if (jobs, size) != full:
                    spec = replace(spec, shortened=WHY_SHORTENED)
                if quick:
                    if concurrency != CONCURRENCY[0]:
                        continue  # the quick run keeps one concurrency: L = 20
                    spec = quick_variant(spec)
                if only is None or only in spec.label:
                    runs.append(spec)
    return runs


def quick_variant(spec: RunSpec) -> RunSpec:
    """A smoke run: small jobs, small concurrency, a modest time scale (minutes for the whole plan)."""
    jobs = min(spec.jobs, 5)
    concurrency = min(spec.concurrency, 20)
    return replace(
        spec,
        jobs=jobs,
        images_per_job=100 if jobs > 1 else 300,
        concurrency=concurrency,
        factor=6.0,
        shortened="quick run: a smoke test of the harness, not the scenario",
        stream_shards=4,
    )


def write_store_master(path: Path, areas: int, stores: int, seed: int = 7) -> Path:
    """A generated Store Master (same header as the real one): `stores` stores over `areas` areas."""
    rng = random.Random(seed)
    lines = ["AreaCode,StoreName,StoreID"]
    for i in range(stores):
        area = 7_200_000 + (i % areas if i < areas else rng.randrange(areas))
        lines.append(f"{area},GENERATED STORE {i:05d},RQ{i:05d}")
    path.write_text("\n".join(lines) + "\n")
    return path


def job_bodies(spec: RunSpec, store_ids: list[str], seed: int = 11) -> list[str]:
    """One submit body per job: visits of 10 images to random stores on random days of the last 30."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    bodies = []
    for job in range(spec.jobs):
        visits = []
        for v in range(spec.images_per_job // IMAGES_PER_VISIT):
            when = now - timedelta(days=rng.randrange(30), minutes=rng.randrange(24 * 60))
            urls = [f"https://images.example.com/{job}/{v}/{i}.jpg" for i in range(IMAGES_PER_VISIT)]
            visits.append(
                {
                    "store_id": rng.choice(store_ids),
                    "image_url": urls,
                    "visit_time": when.isoformat().replace("+00:00", "Z"),
                }
            )
        bodies.append(json.dumps({"count": len(visits), "visits": visits}))
    return bodies
