"""When to try a refused write again: exponential backoff with full jitter, inside a deadline.

AWS's guidance for throttling and transaction conflicts is to retry with jittered exponential
backoff; the deadline is the invocation's remaining time, so a write never outlives its function.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_s: float = 0.02
    max_delay_s: float = 1.0
    max_attempts: int = 10

    def delays(self, deadline: float | None, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
        """The pauses before attempts 2, 3, ...: stops when attempts run out or a pause would pass the deadline."""
        for attempt in range(1, self.max_attempts):
            delay = random.uniform(0, min(self.max_delay_s, self.first_delay_s * 2**attempt))
            if deadline is not None and clock() + delay >= deadline:
                return
            yield delay


# Writes refused for capacity or by a concurrent transaction (DynamoDB): retried inside the call.
WRITE_RETRY = RetryPolicy()
# A write that cannot wait (an API request): a shorter budget when no deadline is given.
DEFAULT_WRITE_BUDGET_S = 10.0


def redelivery_delay_s(receive_count: int) -> int:
    """Seconds a message whose result could not be written waits before its next delivery: short and
    growing (SQS's visibility timeout would hold it for minutes), jittered so batches spread out."""
    return min(60, int(2**receive_count * random.uniform(1.0, 1.5)))
