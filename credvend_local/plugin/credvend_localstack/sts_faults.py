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

The fault state (faults.py) is pure, unit-tested on its own.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from localstack.runtime import hooks

from .faults import StsFaults

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext
    from localstack.aws.chain import HandlerChain
    from localstack.http import Response

LOG = logging.getLogger(__name__)

FAULTS_PATH = "/_credvend/sts/faults"
FAULTS = StsFaults()


@hooks.on_infra_start()
def credvend_sts_faults() -> None:
    from localstack.aws.handlers import serve_custom_service_request_handlers
    from localstack.services.edge import ROUTER

    # First, before the STS rules: a throttled call never reaches them (nor their journal),
    # as a throttled call on AWS is refused before anything is evaluated.
    serve_custom_service_request_handlers.handlers.insert(0, inject_sts_fault)
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
