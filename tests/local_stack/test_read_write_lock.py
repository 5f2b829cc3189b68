"""The moto process's read/write lock: fair to writers, readers still share."""

from __future__ import annotations

import threading
import time

from reliability import record

from local_stack.aws import PASSING_READERS, ReadWriteLock


def test_a_waiting_writer_gets_in_before_readers_that_arrive_after_it():
    # A stream of overlapping readers (one arrives every 5 ms, each reads for 20 ms): some reader
    # always holds the lock, so a lock that lets readers pass a waiting writer never lets it in.
    lock = ReadWriteLock()
    entered: list[str] = []

    def reader(name: str) -> None:
        with lock.reading():
            entered.append(name)
            time.sleep(0.02)

    def writer() -> None:
        with lock.writing():
            entered.append("writer")

    threads = [threading.Thread(target=reader, args=("r0",))]
    threads[0].start()
    time.sleep(0.005)
    threads.append(threading.Thread(target=writer))
    threads[-1].start()
    for i in range(1, 40):
        time.sleep(0.005)
        threads.append(threading.Thread(target=reader, args=(f"r{i}",)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=10)
    assert entered.index("writer") <= 3, entered[:10]
    record("local moto: a writer among 40 overlapping readers (pollers) gets in, never starved", cases=40)


def test_readers_next_to_each_other_share_the_lock():
    lock = ReadWriteLock()
    inside = threading.Barrier(3, timeout=5)  # all three readers must be inside at once

    def reader() -> None:
        with lock.reading():
            inside.wait()

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not inside.broken


def test_writes_run_alone():
    lock = ReadWriteLock()
    active, most = [0], [0]
    guard = threading.Lock()

    def work(write: bool) -> None:
        with lock.writing() if write else lock.reading():
            with guard:
                active[0] += 1 if write else 0
                most[0] = max(most[0], active[0])
            time.sleep(0.002)
            with guard:
                active[0] -= 1 if write else 0

    threads = [threading.Thread(target=work, args=(i % 3 == 0,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 1


def _order_behind_a_write(waiters: list[str]) -> list[str]:
    """Who goes in, in order: a writer "w0" holds the lock while `waiters` (names starting with "w"
    write, "reader" reads) join the line in this order, each seen in the line before the next
    starts (the arrival order is made, not hoped for); then w0 leaves."""
    lock = ReadWriteLock()
    entered: list[str] = []
    holding, finish = threading.Event(), threading.Event()

    def waiter(name: str) -> None:
        with lock.writing() if name.startswith("w") else lock.reading():
            entered.append(name)
            if name == "w0":
                holding.set()
                assert finish.wait(5)

    threads = [threading.Thread(target=waiter, args=("w0",))]
    threads[0].start()
    assert holding.wait(5)
    for queued, name in enumerate(waiters, start=1):
        threads.append(threading.Thread(target=waiter, args=(name,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(lock._line) < queued:  # read afresh: a leaving writer replaces the line
            assert time.monotonic() < deadline, "a waiter never joined the line"
            time.sleep(0.001)
    finish.set()
    for thread in threads:
        thread.join(timeout=10)
    return entered


def test_a_reader_waits_for_the_write_in_progress_not_for_every_write_queued_before_it():
    # A status poll behind a line of result writes goes in when the current write ends.
    entered = _order_behind_a_write(["w1", "w2", "w3", "reader"])
    assert entered == ["w0", "reader", "w1", "w2", "w3"], entered
    record("local moto: a read waits for the write in progress, not for the writes queued before it", cases=1)


def test_a_crowd_of_readers_keeps_its_place_behind_queued_writers():
    # More than PASSING_READERS waiting readers (pollers) do not pass: the writes keep their turn.
    crowd = ["reader"] * (PASSING_READERS + 1)
    entered = _order_behind_a_write(["w1", *crowd])
    assert entered == ["w0", "w1", *crowd], entered
    record("local moto: a crowd of waiting readers keeps its place behind queued writes", cases=1)
