"""The state of the STS faults plugin (sts_faults.py): what is armed, what was done.

Pure (no LocalStack imports) so it is unit-tested on its own, like the journal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_COUNT = 10_000
MAX_DELAY_SECONDS = 120.0
DEFAULT_OPERATIONS = ("AssumeRole",)
_KEYS = frozenset({"throttle_next", "delay_seconds", "count", "operations"})


@dataclass
class StsFaults:
    """What is armed and what was done, shared by LocalStack's request threads."""

    throttle_next: int = 0
    delay_seconds: float = 0.0
    delay_next: int = 0
    operations: tuple[str, ...] = DEFAULT_OPERATIONS
    throttled: int = 0  # calls answered with Throttling since the last reset
    delayed: int = 0  # calls delayed since the last reset
    in_delay: int = 0  # calls sleeping right now
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def arm(self, body: Any) -> None:
        """Apply a POST body; ValueError (-> 400) names what is wrong, and nothing changes."""
        if not isinstance(body, dict) or not body or not set(body) <= _KEYS:
            raise ValueError(f"expected a JSON object with some of {sorted(_KEYS)}")
        throttle = _count(body, "throttle_next") if "throttle_next" in body else None
        delay = None
        if "delay_seconds" in body or "count" in body:
            seconds = body.get("delay_seconds")
            number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
            if not number or not 0 < seconds <= MAX_DELAY_SECONDS:
                raise ValueError(f"delay_seconds must be a number in (0, {MAX_DELAY_SECONDS:.0f}]")
            delay = (float(seconds), _count(body, "count"))
        operations = body.get("operations", list(DEFAULT_OPERATIONS))
        if not isinstance(operations, list) or not operations or not all(isinstance(op, str) for op in operations):
            raise ValueError("operations must be a non-empty list of STS operation names")
        if throttle is None and delay is None:
            raise ValueError("nothing to arm: give throttle_next, or delay_seconds and count")
        with self._lock:
            self.operations = tuple(operations)
            if throttle is not None:
                self.throttle_next = throttle
            if delay is not None:
                self.delay_seconds, self.delay_next = delay

    def take(self, operation: str) -> tuple[str, float] | None:
        """The fault for one call of ``operation``: ("throttle", 0), ("delay", S) or None."""
        with self._lock:
            if operation not in self.operations:
                return None
            if self.throttle_next > 0:
                self.throttle_next -= 1
                self.throttled += 1
                return ("throttle", 0.0)
            if self.delay_next > 0:
                self.delay_next -= 1
                self.delayed += 1
                return ("delay", self.delay_seconds)
            return None

    def sleep(self, seconds: float, sleeper: Callable[[float], None] = time.sleep) -> None:
        with self._lock:
            self.in_delay += 1
        try:
            sleeper(seconds)
        finally:
            with self._lock:
                self.in_delay -= 1

    def reset(self) -> None:
        with self._lock:
            self.throttle_next = self.delay_next = self.throttled = self.delayed = 0
            self.delay_seconds = 0.0
            self.operations = DEFAULT_OPERATIONS

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "throttle_next": self.throttle_next,
                "delay_seconds": self.delay_seconds,
                "delay_next": self.delay_next,
                "operations": list(self.operations),
                "throttled": self.throttled,
                "delayed": self.delayed,
                "in_delay": self.in_delay,
            }


def _count(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{key} must be an integer in [0, {MAX_COUNT}]")
    return value
