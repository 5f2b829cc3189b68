"""`make scale`'s model (benchmarks/scale) on a tiny scenario, both write paths: the run ends, every
image is counted exactly once (jobs, results, report counters), no good image is recorded failed,
and nothing waits out a visibility timeout. Invariants only: timings are SCALE.md's business."""

from __future__ import annotations

from dataclasses import replace

import pytest

from benchmarks.scale.report import figures
from benchmarks.scale.run import run_one
from benchmarks.scale.scenarios import SCENARIOS, RunSpec, write_store_master


@pytest.fixture(scope="module")
def store_master(tmp_path_factory):
    return write_store_master(tmp_path_factory.mktemp("scale") / "StoreMaster.csv", areas=2, stores=50)


@pytest.mark.parametrize("path", ["today", "new"])
def test_tiny_scenario_counts_exactly(path, store_master):
    scenario = replace(SCENARIOS[1], jobs=3, images_per_job=30)
    # F = 1: the model's clock at real speed (the invariants do not depend on it, the test's time does).
    spec = RunSpec(scenario, path, concurrency=4, factor=1.0, jobs=3, images_per_job=30, stream_shards=2)
    result = run_one(spec, store_master, wall_limit_s=45.0)

    assert result.outcome == "completed"
    verified = result.verified
    assert verified.mismatches == []
    assert (verified.jobs, verified.images, verified.results) == (3, 90, 90)
    assert verified.succeeded == 90
    assert verified.failed == 0  # no good image recorded failed
    if path == "new":  # refused results come back in seconds, never after the visibility timeout
        assert result.queues["ProcessImage"].batches_left_to_timeout == 0
    assert result.dead_letters.get("after 5 receives", 0) == 0
    f = figures(result)
    assert f.wcu > 0
    assert len(result.completions) == 3
