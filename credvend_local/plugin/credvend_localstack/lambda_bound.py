"""Bound the execution environments of each function on a small host: invocations queue for one.

On AWS, 200 concurrent invocations run in 200 execution environments on Lambda's fleet. The
host-process executor runs each environment as a process on this machine, and 200 Python
cold starts at once on 2 cores take minutes (and time out). With a bound of N, at most N
invocations of one function version run at once and the others wait for one to finish, so
no more than N environments are ever started. It stands in for Lambda's parallel hardware
in load tests on a laptop; it is not a behaviour of credvend, and figures measured under it
include this queueing (say so where they are reported).

    POST /_credvend/lambda/environment-bound {"max_environments": N}     (null: no bound)
    GET  /_credvend/lambda/environment-bound   -> {"max_environments", "active", "waited"}

Default: no bound, or CREDVEND_LAMBDA_MAX_ENVIRONMENTS=N in LocalStack's environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from localstack.runtime import hooks

from .gate import InvocationGate

LOG = logging.getLogger(__name__)

BOUND_PATH = "/_credvend/lambda/environment-bound"
ENV_VAR = "CREDVEND_LAMBDA_MAX_ENVIRONMENTS"
GATE = InvocationGate()


@hooks.on_infra_start()
def credvend_lambda_environment_bound() -> None:
    from localstack.services.edge import ROUTER
    from localstack.services.lambda_.invocation.assignment import AssignmentService

    configured = os.environ.get(ENV_VAR, "").strip()
    if configured and configured != "0":
        GATE.set_limit(int(configured))
    original = AssignmentService.get_environment

    @contextlib.contextmanager
    def bounded_get_environment(self: Any, version_manager_id: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        # Wait before choosing an environment: the one a finished invocation released is
        # then idle (released inside the original context) and reused, not a new one started.
        GATE.enter(version_manager_id)
        try:
            with original(self, version_manager_id, *args, **kwargs) as environment:
                yield environment
        finally:
            GATE.leave(version_manager_id)

    AssignmentService.get_environment = bounded_get_environment
    ROUTER.add(BOUND_PATH, serve_bound, methods=["GET", "POST"])
    LOG.info("credvend Lambda environment bound: %s (control at %s)", GATE.limit, BOUND_PATH)


def serve_bound(request: Any, **_: Any) -> Any:
    from localstack.http import Response

    if request.method == "POST":
        body = request.get_json(force=True, silent=True)
        value = body.get("max_environments", "missing") if isinstance(body, dict) else "missing"
        valid = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
        if not valid:
            return Response.for_json({"error": "max_environments must be a positive integer or null"}, status=400)
        GATE.set_limit(value)
    return GATE.snapshot()
