"""A bound on concurrent invocations per function, for the host-process executor (see lambda_bound.py).

Pure (no LocalStack imports) so it is unit-tested on its own.
"""

from __future__ import annotations

import threading
from collections import defaultdict


class InvocationGate:
    """At most ``limit`` holders per key at once; the others wait. ``limit`` None: no bound.

    The limit may change at any time (a test sets it, then lifts it); waiters re-check it.
    """

    def __init__(self, limit: int | None = None) -> None:
        self._condition = threading.Condition()
        self._limit = limit
        self._active: defaultdict[str, int] = defaultdict(int)
        self.waited = 0  # entries that had to wait, since the limit was last set

    @property
    def limit(self) -> int | None:
        return self._limit

    def set_limit(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the limit must be a positive integer, or null for none")
        with self._condition:
            self._limit = limit
            self.waited = 0
            self._condition.notify_all()

    def enter(self, key: str) -> None:
        with self._condition:
            if self._limit is not None and self._active[key] >= self._limit:
                self.waited += 1
            while self._limit is not None and self._active[key] >= self._limit:
                self._condition.wait()
            self._active[key] += 1

    def leave(self, key: str) -> None:
        with self._condition:
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]
            self._condition.notify_all()

    def snapshot(self) -> dict[str, object]:
        with self._condition:
            return {"max_environments": self._limit, "active": dict(self._active), "waited": self.waited}
