"""A function's warm workers: the cold start is read once, whichever thread waits for it first."""

from __future__ import annotations

import threading
from pathlib import Path

from devkit.template import FunctionSpec
from local_stack.functions import FunctionPool

SLOW_IMPORT = """
import time

time.sleep(1.0)  # a cold start long enough for both threads to be waiting on it


def handler(event, context):
    return {"answer": event["n"] * 2}
"""


def test_waiting_for_the_warm_workers_does_not_take_an_invocations_answer(tmp_path: Path) -> None:
    (tmp_path / "slow_app.py").write_text(SLOW_IMPORT)
    spec = FunctionSpec("SlowFunction", tmp_path, "slow_app.handler", timeout=5, memory=128, environment={})
    pool = FunctionPool(spec, env={}, layer_dirs=[], max_workers=1)
    try:
        pool.warm(1)
        answers = []
        invoking = threading.Thread(target=lambda: answers.append(pool.invoke({"n": 21})))
        invoking.start()
        pool.wait_warm(timeout=30)  # the stack does this while its pollers already invoke
        invoking.join(timeout=30)

        assert [(a.ok, a.payload) for a in answers] == [(True, {"answer": 42})]
        (init_s,) = pool.init_times()
        assert isinstance(init_s, float) and init_s >= 1.0
    finally:
        pool.stop()
