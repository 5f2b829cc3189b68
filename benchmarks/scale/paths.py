"""The two write paths under the same model.

- `NewPath`: the current code. process_image (functions/process_image/app.py) writes one conditional
  PutItem per result; CountResultsFunction (functions/count_results/app.py) counts them from the
  table's stream; dead letters go through functions/dead_letter. The handlers run as they are; the
  model only provides what Lambda would (`handler_kit`'s adapters: the DynamoDB repository with its
  retry pauses x F, the in-memory download, one thread pool per modelled container).
- `OldPath`: f399a74's write path, frozen under baseline/ (one TransactWriteItems per batch).

Both count what their code met (`Attempts`): operations, refusals on the first try and later, and
operations given up after their retries.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devkit.lambda_runtime import load_function
from devkit.template import load_template

from .baseline import handler as baseline_handler
from .baseline.repository import BaselineJobRepository
from .baseline.table import old_template

Handler = Callable[[dict, Any], Any]
KIT_FACTORIES = ("jobs", "downloader", "image_pool")


class Attempts:
    """What the write code met, by operation class (transaction, write, read): operations started,
    refusals on their first try / on a later try (by kind), and operations given up."""

    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, ...]] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, *key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def get(self, *key: str) -> int:
        return self.counts.get(key, 0)


def op_class(name: str) -> str:
    if name.startswith("transact_write"):
        return "transaction"
    writes = name.split("_", maxsplit=1)[0] in ("put", "update", "delete") or name == "batch_write_item"
    return "write" if writes else "read"


class ModelDownloader:
    """The HTTP fetch, modelled: a small JPEG after `latency_s` (x F)."""

    def __init__(self, body: bytes, latency_s: float) -> None:
        self.body, self.latency_s = body, latency_s

    def fetch(self, url: str, deadline: float) -> bytes:
        time.sleep(self.latency_s)
        return self.body


class NewPath:
    key, label = "new", "new (PutItem + stream counting)"

    def __init__(self) -> None:
        self.attempts = Attempts()
        self._saved: dict[str, Any] = {}

    def template(self) -> dict:
        return load_template()

    def setup(self, table: str, factor: float, downloader: ModelDownloader, pool: ThreadPoolExecutor) -> None:
        from retail_pulse import handler_kit as kit
        from retail_pulse.adapters.dynamodb import table as table_module
        from retail_pulse.adapters.dynamodb.repository import DynamoJobRepository
        from retail_pulse.adapters.dynamodb.table import refusal_kind
        from retail_pulse.domain.retry import WRITE_RETRY, RetryPolicy
        from retail_pulse.ports import StorageRefused

        kit.clear_caches()
        policy = RetryPolicy(
            WRITE_RETRY.first_delay_s * factor, WRITE_RETRY.max_delay_s * factor, WRITE_RETRY.max_attempts
        )
        # Ten concurrent result writers per batch, as deployed: moto is serialised behind the limits
        # model's lock here, so the writes cannot race its stream records (RESULT_WRITE_CONCURRENCY=1
        # is only for tests that run moto without that lock).
        repo = DynamoJobRepository(table, result_writers=10)
        repo.policy = policy
        retrying, attempts = repo.retrying, self.attempts

        def counted(operation: Callable[..., Any], /, deadline: float | None = None, **params: Any) -> Any:
            kind = op_class(getattr(operation, "__name__", ""))
            tries = [0]

            def attempt(**p: Any) -> Any:
                tries[0] += 1
                try:
                    return operation(**p)
                except (ClientError, BotoCoreError) as exc:
                    refusal = refusal_kind(exc)
                    if refusal in ("conflict", "throttle"):
                        attempts.add(kind, refusal, "first" if tries[0] == 1 else "later")
                    raise

            attempts.add(kind, "operations")
            try:
                return retrying(attempt, deadline=deadline, **params)
            except StorageRefused:
                attempts.add(kind, "gave up")
                raise

        repo.retrying = counted
        self.repo = repo
        self._saved = {name: getattr(kit, name) for name in KIT_FACTORIES}
        self._saved["budget"] = table_module.DEFAULT_WRITE_BUDGET_S
        kit.jobs, kit.downloader, kit.image_pool = (lambda: repo), (lambda: downloader), (lambda: pool)
        table_module.DEFAULT_WRITE_BUDGET_S = self._saved["budget"] * factor
        self.process = load_function("process_image", prefix="scale")
        self.process.WRITE_RESERVE_S *= factor
        self.process.SETTLE_RESERVE_S *= factor
        self.count = load_function("count_results", prefix="scale")
        self.count.NOTICE_RESERVE_S *= factor
        self.dead_letter = load_function("dead_letter", prefix="scale")
        for module in (self.process, self.count, self.dead_letter):
            mute_metrics(module)

    def teardown(self) -> None:
        from retail_pulse import handler_kit as kit
        from retail_pulse.adapters.dynamodb import table as table_module

        if "budget" in self._saved:
            table_module.DEFAULT_WRITE_BUDGET_S = self._saved.pop("budget")
        for name, factory in self._saved.items():
            setattr(kit, name, factory)
        kit.clear_caches()

    def submit_repository(self) -> Any:
        return self.repo

    def process_handler(self) -> Handler:
        return self.process.lambda_handler

    def dead_letter_handler(self) -> Handler:
        return self.dead_letter.lambda_handler

    def stream_handler(self) -> Handler | None:
        return self.count.lambda_handler


class OldPath:
    key, label = "today", "today (one transaction per batch, f399a74)"

    def __init__(self) -> None:
        self.attempts = Attempts()

    def template(self) -> dict:
        return old_template(load_template())

    def setup(self, table: str, factor: float, downloader: ModelDownloader, pool: ThreadPoolExecutor) -> None:
        from retail_pulse.settings import get_settings

        attempts = self.attempts

        def observe(event: str, first: bool = False) -> None:
            if event in ("conflict", "throttle"):
                attempts.add("transaction", event, "first" if first else "later")
            else:
                attempts.add("transaction", {"operation": "operations", "gave_up": "gave up"}.get(event, event))

        self.repo = BaselineJobRepository(table, sleep=lambda s: time.sleep(s * factor), observe=observe)
        get_settings.cache_clear()
        settings, fetch = get_settings(), downloader.fetch

        def process(event: dict, context: Any) -> dict:
            return baseline_handler.process_batch(
                event, context, repo=self.repo, settings=settings, fetch=fetch, pool=pool, time_scale=factor
            )

        def dead_letter(event: dict, context: Any) -> dict:
            return baseline_handler.dead_letter_batch(event, context, repo=self.repo)

        self._process, self._dead_letter = process, dead_letter

    def teardown(self) -> None:
        from retail_pulse.settings import get_settings

        get_settings.cache_clear()

    def submit_repository(self) -> Any:
        return self.repo

    def process_handler(self) -> Handler:
        return self._process

    def dead_letter_handler(self) -> Handler:
        return self._dead_letter

    def stream_handler(self) -> Handler | None:
        return None


def mute_metrics(module: Any) -> None:
    """Powertools' EMF metrics keep one shared buffer per process (per container on Lambda, where one
    invocation runs at a time); with hundreds of modelled containers in one process they would race,
    and they write nothing to AWS. Their calls become no-ops; the handlers are otherwise unchanged."""
    provider = getattr(getattr(module, "metrics", None), "provider", None)
    if provider is not None:
        provider.add_metric = lambda *a, **k: None
        provider.flush_metrics = lambda *a, **k: None
        provider.add_cold_start_metric = lambda *a, **k: None
