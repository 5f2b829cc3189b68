"""moto's state across restarts, in the moto process: the backends of the services the local stack
uses, pickled under the write lock (no request is half applied in them) and restored before the
server starts.

moto has no persistence in server mode (its recorder replays requests, which at our write volume
would take longer than the work did); its backends are plain Python objects, and moto 5.2's
`BackendDict`s pickle whole: tables with their items and indexes, buckets with their objects,
topics with their subscriptions. A restore fills moto's own module-level dicts in place, since
its request handlers hold on to them.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# SQS is the local stack's own (local_stack/sqs.py); moto serves these.
SERVICES = ("dynamodb", "s3", "sns")
FORMAT = 1  # bumped when what is saved changes shape: an older file is then not restored


@dataclass(frozen=True)
class Restored:
    ok: bool
    detail: str  # what was restored, or why nothing was


def _backends() -> dict[str, Any]:
    from moto.backends import get_backend

    return {service: get_backend(service) for service in SERVICES}


def restore(path: Path) -> Restored:
    """Loads `path` into moto's backends (before any request). A file that cannot be read is moved
    aside (`<name>.unreadable-<time>`), never deleted, and moto starts empty."""
    if not path.exists():
        return Restored(False, "nothing saved yet")
    try:
        import moto

        saved = pickle.loads(path.read_bytes())  # noqa: S301 - our own file, written by save() below
        if saved.get("format") != FORMAT or saved.get("moto") != moto.__version__:
            raise ValueError(
                f"saved by moto {saved.get('moto')} (format {saved.get('format')}), this is {moto.__version__}"
            )
        for service, live in _backends().items():
            live.clear()
            live.update(saved["backends"].get(service, {}))
    except Exception as exc:  # any unreadable file is reported and set aside, never fatal
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        with contextlib.suppress(OSError):
            path.rename(aside)
        for live in _backends().values():
            live.clear()
        return Restored(False, f"could not read {path.name} ({type(exc).__name__}: {exc}); moved to {aside.name}")
    return Restored(True, f"{path.stat().st_size // 1024} KiB")


def save(path: Path, writing: Callable[[], contextlib.AbstractContextManager]) -> int:
    """Pickles the backends while holding moto's write lock, then writes them atomically (a temp
    file renamed over `path`, fsynced first: a crash leaves the previous file or this one)."""
    import moto

    with writing():
        data = pickle.dumps(
            {"format": FORMAT, "moto": moto.__version__, "backends": _backends()}, protocol=pickle.HIGHEST_PROTOCOL
        )
    write_atomically(path, data)
    return len(data)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
