"""submit_job with fake repositories: the enqueue-failure path and what it leaves behind."""

from __future__ import annotations

import pytest

from retail_pulse.domain.errors import EnqueueFailed
from retail_pulse.domain.store_master import parse_store_master
from retail_pulse.logic.submit import submit_job
from retail_pulse.ports import EnqueueError
from retail_pulse.settings import Settings

STORES = parse_store_master("AreaCode,StoreName,StoreID\n1,A,S1\n")
BODY = (
    '{"count": 1, "visits": [{"store_id": "S1", "image_url": ["https://x/a.jpg"],'
    ' "visit_time": "2024-01-01T00:00:00Z"}]}'
)


class FakeJobs:
    def __init__(self):
        self.created, self.failed = [], []

    def create_job(self, job_id, total, ended_at_submit, created_at, expires_at, *, client_id, **_):
        self.created.append((job_id, total, list(ended_at_submit), client_id))

    def mark_failed(self, job_id, reason, finished_at):
        self.failed.append((job_id, reason))


class FailingQueue:
    def send(self, tasks):
        raise EnqueueError("could not enqueue 1 image(s): throttled")


class RecordingQueue:
    def __init__(self):
        self.tasks = []

    def send(self, tasks):
        self.tasks += tasks


def test_enqueue_failure_marks_the_job_failed_and_answers_503():
    jobs = FakeJobs()
    with pytest.raises(EnqueueFailed) as err:
        submit_job(
            BODY,
            settings=Settings(),
            jobs=jobs,
            queue=FailingQueue(),
            stores=STORES,
            client_id="c1",
            make_job_id=lambda: "j1",
        )
    assert err.value.status_code == 503
    assert err.value.body()["job_id"] == "j1" and "throttled" in err.value.body()["error"]
    assert jobs.failed == [("j1", "enqueueing images failed: could not enqueue 1 image(s): throttled")]


def test_tasks_carry_submission_order_and_retention():
    jobs, queue = FakeJobs(), RecordingQueue()
    body = (
        '{"count": 2, "visits": ['
        '{"store_id": "S1", "image_url": ["https://x/a.jpg", "https://x/b.jpg"], "visit_time": "2024-01-01T00:00:00Z"},'
        '{"store_id": "S9", "image_url": ["https://x/c.jpg"], "visit_time": "2024-01-01T00:00:00Z"}]}'
    )
    out = submit_job(body, settings=Settings(job_ttl_days=2), jobs=jobs, queue=queue, stores=STORES, client_id="c1")
    assert out["total"] == 3
    assert [(t.index, t.image_url) for t in queue.tasks] == [(0, "https://x/a.jpg"), (1, "https://x/b.jpg")]
    [(_, total, unknown, client_id)] = jobs.created
    assert total == 3 and client_id == "c1" and [(r.task.index, r.status) for r in unknown] == [(2, "failed")]
    assert queue.tasks[0].expires_at == unknown[0].task.expires_at
