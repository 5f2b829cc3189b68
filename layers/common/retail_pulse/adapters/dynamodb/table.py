"""What every DynamoDB adapter shares: the client, paged Queries, and writes retried the way their
failure asks for (see domain/retry.py for when).

DynamoDB refuses a write for capacity (ProvisionedThroughputExceededException, ThrottlingException,
or a transaction cancelled with ThrottlingError reasons: botocore retries none of the last) or
because a transaction holds one of its items (TransactionConflictException, or a transaction
cancelled with TransactionConflict reasons). Nothing was written in either case, so the same call
is safe to repeat: it is, with jittered backoff, until the caller's deadline. A condition that fails
is an answer, never retried.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from retail_pulse.adapters.dynamodb.items import from_item, to_item
from retail_pulse.adapters.dynamodb.wire import take_items_from_json
from retail_pulse.domain.retry import DEFAULT_WRITE_BUDGET_S, WRITE_RETRY, RetryPolicy
from retail_pulse.ports import StorageRefused

THROTTLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
}
CONFLICT_CODES = {"TransactionConflictException", "TransactionInProgressException"}
TRANSIENT_CODES = {"InternalServerError", "ServiceUnavailable"}
CANCELLATION_RETRYABLE = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}


def refusal_kind(exc: Exception) -> str | None:
    """ "conflict", "throttle" or "transient" when the call wrote nothing and may be repeated; else None."""
    if isinstance(exc, (ConnectionError, ReadTimeoutError)):
        return "transient"
    if not isinstance(exc, ClientError):
        return None
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "TransactionCanceledException":
        reasons = {r.get("Code") for r in exc.response.get("CancellationReasons") or []} - {"None", None}
        if not reasons or not reasons <= CANCELLATION_RETRYABLE:
            return None  # a condition failed (or a validation): an answer, not a refusal
        return "throttle" if reasons & {"ThrottlingError", "ProvisionedThroughputExceeded"} else "conflict"
    kinds = {**dict.fromkeys(THROTTLE_CODES, "throttle"), **dict.fromkeys(CONFLICT_CODES, "conflict")}
    return kinds.get(code) or ("transient" if code in TRANSIENT_CODES else None)


def cancellation_codes(exc: ClientError) -> list[str]:
    return [r.get("Code") or "None" for r in exc.response.get("CancellationReasons") or []]


class TableAccess:
    def __init__(self, table_name: str, client: Any | None = None, policy: RetryPolicy = WRITE_RETRY) -> None:
        self.table_name = table_name
        # botocore retries plain throttling a few times itself; our loop covers the rest (see above).
        # No client-side parameter validation: DynamoDB validates every request itself (a bad one is
        # a ValidationException either way), and walking each request's shape in botocore cost an
        # eighth of process_image's CPU, which writes one PutItem per image.
        self.client = client or boto3.client(
            "dynamodb",
            config=Config(
                retries={"mode": "standard", "total_max_attempts": 3},
                max_pool_connections=32,
                parameter_validation=False,
            ),
        )
        take_items_from_json(self.client)
        self.policy = policy
        # Refusals met since the caller last took them (for metrics and alarms): kind -> count.
        self._refusals: collections.Counter[str] = collections.Counter()
        self._refusals_lock = threading.Lock()

    def take_refusals(self) -> dict[str, int]:
        """Conflicts, throttles and transient errors met (retried or not) since the last call, and
        `exhausted`: calls that gave up."""
        with self._refusals_lock:
            out = dict(self._refusals)
            self._refusals.clear()
        return out

    def _count(self, kind: str) -> None:
        with self._refusals_lock:
            self._refusals[kind] += 1

    def retrying(self, operation: Callable[..., Any], /, deadline: float | None = None, **params: Any) -> Any:
        """`operation(**params)` repeated while DynamoDB refuses it (capacity, conflicts) and time
        remains; raises StorageRefused when it gives up, any other error at once."""
        if deadline is None:
            deadline = time.monotonic() + DEFAULT_WRITE_BUDGET_S
        delays = self.policy.delays(deadline)
        while True:
            try:
                return operation(**params)
            except (ClientError, BotoCoreError) as exc:
                kind = refusal_kind(exc)
                if kind is None:
                    raise
                self._count(kind)
                delay = next(delays, None)
                if delay is None:
                    self._count("exhausted")
                    raise StorageRefused(f"DynamoDB refused the write ({kind}): {exc}") from exc
                time.sleep(delay)

    def next_pause(self, pauses: Iterator[float], refusal: str) -> float:
        """The retry policy's next pause (from `self.policy.delays`), or StorageRefused(refusal) once
        its pauses have run out."""
        pause = next(pauses, None)
        if pause is None:
            self._count("exhausted")
            raise StorageRefused(refusal)
        return pause

    def batch_write_all(self, requests: list[dict], deadline: float | None = None) -> None:
        """BatchWriteItem of these requests, 25 at a time. What DynamoDB leaves unprocessed (it does
        when throttled) is sent again after the retry policy's pauses; StorageRefused once they run out."""
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table_name: requests[start : start + 25]}
            pauses = self.policy.delays(deadline)
            while True:
                resp = self.retrying(self.client.batch_write_item, RequestItems=pending, deadline=deadline)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(self.next_pause(pauses, "DynamoDB kept leaving items unprocessed (throttled)"))

    def batch_get_all(self, keys: list[dict], deadline: float | None = None, **options: Any) -> Iterator[dict]:
        """Every item of these keys (plain values; `options`: the request's projection, consistency),
        BatchGetItem 100 keys at a time, unprocessed keys asked again as in batch_write_all."""
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.table_name: {"Keys": [to_item(k) for k in keys[start : start + 100]], **options}
            }
            pauses = self.policy.delays(deadline)
            while True:
                resp = self.retrying(self.client.batch_get_item, RequestItems=pending, deadline=deadline)
                yield from (from_item(i) for i in resp.get("Responses", {}).get(self.table_name, []))
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(self.next_pause(pauses, "DynamoDB kept leaving keys unprocessed (throttled)"))

    def query_all(self, **kwargs: Any) -> Iterator[dict]:
        """Every item a Query returns, page after page, as plain values."""
        kwargs.setdefault("TableName", self.table_name)
        while True:
            resp = self.retrying(self.client.query, **kwargs)
            yield from (from_item(i) for i in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def query_page(
        self, want: int, *, read_size: int | None = None, max_reads: int | None = None, **kwargs: Any
    ) -> tuple[list[dict], dict | None]:
        """Up to `want` items of a Query (paging through DynamoDB's 1 MB pages), and the key to go on
        from (plain values) when there may be more (None when the Query is exhausted). A filtered
        Query may read `read_size` entries a request (it may then return more than `want` items)
        and at most `max_reads` requests (its reading budget: the key then says where to go on)."""
        kwargs.setdefault("TableName", self.table_name)
        out: list[dict] = []
        reads = 0
        while len(out) < want and (max_reads is None or reads < max_reads):
            resp = self.retrying(self.client.query, Limit=read_size or want - len(out), **kwargs)
            reads += 1
            out += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out, None
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        start = kwargs.get("ExclusiveStartKey")
        return out, from_item(start) if start is not None else None
