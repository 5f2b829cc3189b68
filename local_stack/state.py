"""The local stack's AWS side across restarts (`--state-dir`, by default `.local/state/` in the
repository), so that a job accepted before `make run` was restarted still answers after it:

- `moto.pickle`: moto's DynamoDB, S3 and SNS, pickled by the moto process (`moto_state.py`);
- `sqs.json`: the messages of our queues (`sqs.py`); one in flight when saved is visible again
  after the restart, its receive count kept (so the redrive to the DLQ still counts it);
- `topics.json`: what the SNS topics delivered to `/_local/topics/`.

Each is saved every `interval` seconds when it changed, and on a clean shutdown (SIGINT, SIGTERM),
written atomically (temp file, fsync, rename): a crash loses at most the last interval, and the
stall sweeper finishes a job whose messages were lost that way. Not kept: the DynamoDB limits
model's counters and the function workers' caches (both start afresh, as after a deploy).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.template import ROOT

from .moto_state import write_atomically

DEFAULT_STATE_DIR = ROOT / ".local" / "state"
DEFAULT_INTERVAL_S = 10.0
MOTO_FILE, SQS_FILE, TOPICS_FILE = "moto.pickle", "sqs.json", "topics.json"
# A save that takes long (a large state) spaces the next out: at most ~10% of the time goes to saving.
SAVE_SHARE = 10


class StateDirInUse(Exception):
    """Another local stack keeps its state in this directory."""


@dataclass
class StateDir:
    path: Path
    _lock_file: Any = None

    def claim(self) -> StateDir:
        """Takes the directory for this process (an advisory lock held until it exits): two stacks
        saving into one directory would overwrite each other's state."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock_file = (self.path / ".lock").open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "?"
            lock_file.close()
            raise StateDirInUse(
                f"{self.path} is in use by another local stack (pid {holder}): stop it, or give this one "
                "another --state-dir (or --no-state)"
            ) from None
        lock_file.truncate(0)
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        self._lock_file = lock_file
        return self

    @property
    def moto_file(self) -> Path:
        return self.path / MOTO_FILE

    def wipe(self) -> bool:
        """Removes the saved state (--fresh); True when there was some."""
        found = False
        for name in (MOTO_FILE, SQS_FILE, TOPICS_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
                found = True
        return found

    def load(self, name: str) -> Any | None:
        """A saved JSON file, or None; one that cannot be read is moved aside, not deleted."""
        path = self.path / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                path.rename(path.with_name(f"{name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"))
            return None

    def save(self, name: str, value: Any) -> None:
        write_atomically(self.path / name, json.dumps(value, separators=(",", ":")).encode())


@dataclass
class StateKeeper:
    """Restores the queues and topic inbox (moto restores itself when its process starts), then
    saves everything periodically and once more at `stop()`."""

    state: StateDir
    aws: Any  # AwsEndpoint: moto's save, our SQS
    topics: Any  # TopicInbox
    interval: float = DEFAULT_INTERVAL_S
    summary: str = ""  # for the startup banner
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _saved_changes: tuple[int, int] = (-1, -1)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def restore(self, fresh: bool) -> str:
        moto = self.aws.moto_restored
        if fresh:
            self.summary = "fresh (--fresh: the saved state was discarded)"
        elif moto is None or not moto.ok:
            self.summary = f"fresh ({moto.detail if moto else 'nothing saved yet'})"
        else:
            messages = 0
            for name, saved in (self.state.load(SQS_FILE) or {}).items():
                queue = self.aws.sqs.queues.get(name)
                if queue is not None:  # a queue the template no longer has: its messages go
                    queue.import_messages(saved)
                    messages += len(saved)
            self.topics.import_messages(self.state.load(TOPICS_FILE) or {})
            self.summary = f"restored (moto {moto.detail}; {messages} queued messages, in-flight ones visible again)"
        return self.summary

    def start(self) -> StateKeeper:
        self._thread = threading.Thread(target=self._run, name="state-keeper", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            started = time.monotonic()
            try:
                self.save()
            except Exception as exc:  # reported and retried next time: the stack runs on
                print(f"state: saving to {self.state.path} failed: {type(exc).__name__}: {exc}", flush=True)
            wait = max(self.interval, SAVE_SHARE * (time.monotonic() - started))

    def save(self) -> None:
        with self._lock:  # the periodic save and the final one never interleave
            # Queues first, then moto: a message deleted before the queues' snapshot had its result
            # written before it, so moto's later snapshot holds that result.
            queues = self.aws.sqs.queues
            changes = (sum(q.changes for q in queues.values()), self.topics.changes)
            if changes[0] != self._saved_changes[0]:
                self.state.save(SQS_FILE, {name: q.export_messages() for name, q in queues.items()})
            if changes[1] != self._saved_changes[1]:
                self.state.save(TOPICS_FILE, self.topics.export_messages())
            self._saved_changes = changes
            self.aws.save_moto_state()

    def stop(self) -> None:
        """The final save: called once nothing runs any more (event sources, API and workers stopped)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=600)
        self.save()
