"""Bounded exponential back-off for temporary API failures, with an injected sleep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from controller.errors import ConflictError, TemporaryError

T = TypeVar("T")

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently a temporary failure is retried."""

    attempts: int = 3
    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        return float(min(self.max_s, self.base_s * self.factor**retry))


def with_backoff(fn: Callable[[], T], backoff: Backoff, sleep: Sleep) -> T:
    """Call `fn`, retrying TemporaryError (not conflicts) with back-off; re-raise the last."""
    retry = 0
    while True:
        try:
            return fn()
        except ConflictError:
            raise
        except TemporaryError as err:
            if retry + 1 >= backoff.attempts:
                # The caller (the daemon) backs off further from here.
                err.retry_after_s = max(err.retry_after_s, backoff.delay(retry + 1))
                raise
            sleep(backoff.delay(retry))
            retry += 1
