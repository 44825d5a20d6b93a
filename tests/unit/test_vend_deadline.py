"""The service never starts an STS call that could not finish before the request's deadline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from credvend.domain.errors import DurationRejected, UpstreamUnavailable
from credvend.domain.formats import AssumedRole, Credentials
from credvend.domain.requests import VendRequest
from credvend.domain.vend import Decision, VendService
from credvend_policy import parse_policy
from tests.unit.conftest import BILLING_SESSION, FUNCTION_ARN, FUNCTION_ROLE_SESSION, IAM_USER, TEST_POLICY

MAX_CALL = 7.0


class _SlowSts:
    """An STS port on a fake clock: call i takes ``seconds[i]``; the first ``rejects`` AssumeRoles
    are refused for their duration."""

    max_call_seconds = MAX_CALL

    def __init__(self, *seconds: float, rejects: int = 0, identity: str = FUNCTION_ROLE_SESSION) -> None:
        self.identity = identity
        self.now = 0.0
        self.seconds = list(seconds)
        self.rejects = rejects
        self.calls: list[str] = []

    def clock(self) -> float:
        return self.now

    def _take(self, name: str) -> None:
        self.calls.append(name)
        self.now += self.seconds.pop(0)

    def caller_identity_arn(self) -> str:
        self._take("GetCallerIdentity")
        return self.identity

    def assume_role(self, *, duration_seconds: int, tags: Sequence[tuple[str, str]], **_: object) -> AssumedRole:
        self._take("AssumeRole")
        if self.rejects:
            self.rejects -= 1
            raise DurationRejected(upstream_code="ValidationError")
        secret = SecretStr("x")
        return AssumedRole(Credentials("ASIA", secret, secret, datetime(2030, 1, 1, tzinfo=UTC)), "arn", "id")


def _vend(sts: _SlowSts, *, time_left: float | None, duration: int = 43200) -> Decision:
    service = VendService(parse_policy(TEST_POLICY), sts, clock=sts.clock)
    service.learn_home(FUNCTION_ARN)
    decision = Decision(request_id="req-0001")
    request = VendRequest(role="long-reader", duration_seconds=duration)
    service.vend(request, principal_arn=BILLING_SESSION, decision=decision, time_left=time_left)
    return decision


def test_a_slow_identity_probe_leaves_no_time_for_assume_role() -> None:
    sts = _SlowSts(2.0)
    with pytest.raises(UpstreamUnavailable) as caught:
        _vend(sts, time_left=8.5)
    assert caught.value.reason == "no_time_left"
    assert sts.calls == ["GetCallerIdentity"]  # AssumeRole was never started


def test_no_time_for_the_first_call_starts_none() -> None:
    sts = _SlowSts()
    with pytest.raises(UpstreamUnavailable):
        _vend(sts, time_left=MAX_CALL - 0.001)
    assert sts.calls == []


def test_no_time_for_the_sts_rejected_retry() -> None:
    sts = _SlowSts(0.1, 2.0, rejects=1, identity=IAM_USER)  # no chaining cap: 43200 is tried first
    with pytest.raises(UpstreamUnavailable):
        _vend(sts, time_left=9.0)
    assert sts.calls == ["GetCallerIdentity", "AssumeRole"]


def test_fast_calls_all_fit() -> None:
    sts = _SlowSts(0.1, 0.1, 0.1, rejects=1, identity=IAM_USER)
    decision = _vend(sts, time_left=MAX_CALL + 0.5)
    assert sts.calls == ["GetCallerIdentity", "AssumeRole", "AssumeRole"]
    assert decision.limited_by == ["sts_rejected"]


def test_without_a_deadline_nothing_is_refused() -> None:
    sts = _SlowSts(30.0, 30.0)
    _vend(sts, time_left=None)
    assert sts.calls == ["GetCallerIdentity", "AssumeRole"]
