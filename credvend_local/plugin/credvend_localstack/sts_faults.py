"""STS faults on demand: throttling and slowness, injected into LocalStack's STS for tests.

credvend promises that a throttled STS reaches the caller as 429 + Retry-After, that a slow
STS ends in a 503 before the function times out, and that clients retry to success. Those
paths only run when STS misbehaves, so the end-to-end tests make it misbehave here:

    POST   /_credvend/sts/faults  {"throttle_next": N}             next N calls: Throttling
    POST   /_credvend/sts/faults  {"delay_seconds": S, "count": N}  next N calls: S seconds late
    GET    /_credvend/sts/faults                                    what is armed, what happened
    DELETE /_credvend/sts/faults                                    disarm, zero the counters

Both may be armed at once (a throttled call is answered at once, not delayed). A POST may
name ``"operations"`` (default ``["AssumeRole"]``): only external calls of those STS
operations are affected, never LocalStack's own (Lambda assuming execution roles).
Throttling is what AWS answers: HTTP 400, ``<Code>Throttling</Code>``, "Rate exceeded". A
delayed call then runs normally: like a slow STS, it may issue credentials to a client that
has already given up (the journal shows them).

The fault state is pure (no LocalStack imports) so it is unit-tested on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from localstack.runtime import hooks

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext
    from localstack.aws.chain import HandlerChain
    from localstack.http import Response

LOG = logging.getLogger(__name__)

FAULTS_PATH = "/_credvend/sts/faults"
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


FAULTS = StsFaults()


@hooks.on_infra_start()
def credvend_sts_faults() -> None:
    from localstack.aws.handlers import serve_custom_service_request_handlers
    from localstack.services.edge import ROUTER

    serve_custom_service_request_handlers.append(inject_sts_fault)
    ROUTER.add(FAULTS_PATH, serve_faults, methods=["GET", "POST", "DELETE"])
    LOG.info("credvend STS faults: control at %s", FAULTS_PATH)


def inject_sts_fault(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    if (
        context.service is None
        or context.service.service_name != "sts"
        or context.operation is None
        or context.is_internal_call
    ):
        return
    fault = FAULTS.take(context.operation.name)
    if fault is None:
        return
    kind, seconds = fault
    if kind == "throttle":
        from localstack.aws.api import CommonServiceException

        LOG.info("credvend STS faults: %s throttled", context.operation.name)
        raise CommonServiceException("Throttling", "Rate exceeded", 400, sender_fault=True)
    LOG.info("credvend STS faults: %s delayed %.1f s", context.operation.name, seconds)
    FAULTS.sleep(seconds)


def serve_faults(request: Any, **_: Any) -> Any:
    from localstack.http import Response

    if request.method == "DELETE":
        FAULTS.reset()
        return Response(status=204)
    if request.method == "POST":
        try:
            FAULTS.arm(request.get_json(force=True, silent=True))
        except ValueError as exc:
            return Response.for_json({"error": str(exc)}, status=400)
    return FAULTS.snapshot()
