"""`make bench` writes its own part of BENCHMARKS.md and keeps every section other scripts wrote."""

from __future__ import annotations

from benchmarks.benchkit.report import CostInputs, Row, cost_table, merge_report, split_sections

PREVIOUS = """# Benchmarks

old table

## Cost per 1,000 images (model from the figures above)

- old cost

## Cold start (INIT)

```bash
## not a heading: inside a code block
```

| function | INIT |

## Manifests

manifest figures
"""


def test_bench_replaces_its_part_and_keeps_the_other_sections_in_order():
    ours = "# Benchmarks\n\nnew table\n\n## Cost per 1,000 images (model from the figures above)\n\n- new cost\n"
    merged = merge_report(ours, PREVIOUS)
    assert merged.startswith(ours)
    assert "old table" not in merged and "old cost" not in merged
    _, sections = split_sections(merged)
    assert [heading for heading, _ in sections] == [
        "## Cost per 1,000 images (model from the figures above)",
        "## Cold start (INIT)",
        "## Manifests",
    ]
    kept = dict(sections)
    assert "## not a heading: inside a code block" in kept["## Cold start (INIT)"]
    assert kept["## Manifests"] == "## Manifests\n\nmanifest figures\n"
    assert merge_report(ours, merged) == merged  # running it again changes nothing


def test_a_new_file_holds_only_the_bench_part():
    assert merge_report("# Benchmarks\n\ntable\n", "") == "# Benchmarks\n\ntable\n"


def test_rows_not_measured_never_meet_their_target():
    row = Row("limits on vs baseline", None, 0.85, "x", lower_is_better=False, note="git not found")
    assert not row.met and row.ratio is None
    assert "not measured" in row.line() and "git not found" in row.line()
    assert Row("throughput", 0.9, 0.85, "x", lower_is_better=False).met


def test_cost_table_adds_up():
    inputs = CostInputs(
        images=1000,
        process_batch_s=0.4,
        process_memory_mb=512,
        count_s_per_image=0.001,
        count_invocations_per_image=0.002,
        count_memory_mb=512,
        submit_s_per_image=0.001,
        submit_memory_mb=1024,
        wcu_per_image=2.0,
        rcu_per_image=0.1,
        submit_wcu_per_image=0.01,
        submit_rcu_per_image=0.0,
        sqs_submit_per_image=0.1,
        sqs_process_per_image=0.0,
    )
    lines, total = cost_table(inputs)
    costs = [float(line.rsplit("| $", 1)[1].rstrip(" |")) for line in lines[2:-1]]
    assert abs(sum(costs) - total) < 1e-4
    assert "20.0 GB-s" in lines[2]  # 100 batches x 0.4 s x 0.5 GB
    assert "2010 WRU" in lines[6]


def test_runs_under_more_load_than_cores_are_flagged_indicative():
    import os

    from benchmarks.benchkit.report import LoadSampler

    sampler = LoadSampler()
    assert not sampler.contended() and "not available" in sampler.describe()
    cores = os.cpu_count() or 1
    sampler.samples = [0.5, cores + 1.0]
    assert sampler.contended()
    assert f"on {cores} cores" in sampler.describe()
    sampler.samples = [0.5, float(cores)]
    assert not sampler.contended()


def test_a_pipe_in_a_note_stays_inside_its_cell():
    line = Row("limits on", None, 0.85, "x", lower_is_better=False, note="failed: a | b").line()
    assert line.count(" | ") == 5 and "a \\| b" in line  # six cells
