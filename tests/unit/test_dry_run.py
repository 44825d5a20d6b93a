"""Dry run (CONTRACT §11) and the CloudTrail join (``sts_request_id``) through the handler.

STS is a stubbed botocore client: any call that was not queued fails the request, so a dry
run that answers 200 with nothing queued made no STS call at all, and one with only a
GetCallerIdentity queued made exactly that call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from credvend.domain.formats import AssumedRole
from tests.unit.conftest import (
    ACCOUNT,
    BATCH_USER,
    STRANGER,
    StsStub,
    assume_role_response,
    get,
    invoke,
    post,
)

REPORTS = f"arn:aws:iam::{ACCOUNT}:role/ReportsReader"
LONG = f"arn:aws:iam::{ACCOUNT}:role/LongReader"
DECISION = "credential vend decision"


def stdout_documents(text: str) -> list[dict[str, Any]]:
    documents = []
    for line in text.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            documents.append(document)
    return documents


def emitted_metrics(text: str) -> list[str]:
    names = []
    for doc in stdout_documents(text):
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            names.extend(metric["Name"] for metric in directive["Metrics"])
    return names


class Decisions(logging.Handler):
    """The decision lines' fields, as the function's logger records them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == DECISION:
            self.lines.append(dict(record.__dict__))


@pytest.fixture
def decisions() -> Iterator[Decisions]:
    collector = Decisions()
    logger = logging.getLogger("credvend")
    logger.addHandler(collector)
    yield collector
    logger.removeHandler(collector)


# -- the answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(post({"role": "reports-reader", "duration_seconds": 1800, "dry_run": True}), id="post"),
        pytest.param(get("reports-reader", {"duration_seconds": "1800", "dry_run": "true"}), id="get"),
    ],
)
def test_dry_run_answers_the_grant_without_credentials_and_without_sts(sts: StsStub, event: dict[str, Any]) -> None:
    status, headers, body = invoke(event)  # nothing queued: any STS call would fail the request

    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"DryRun", "Grant", "RequestId"}
    assert body["DryRun"] is True
    assert body["RequestId"] == "req-0001"
    assert body["Grant"] == {
        "Caller": "billing-api",
        "Role": "reports-reader",
        "RoleArn": REPORTS,
        "RoleSessionName": "billing-api",
        "SourceIdentity": "billing-api",
        "RequestedDurationSeconds": 1800,
        "GrantedDurationSeconds": 1800,
        "LimitedBy": [],
        "Issuance": "assume_role",
    }
    sts.assert_done()


def test_dry_run_grant_is_the_grant_a_real_request_gets(sts: StsStub) -> None:
    # 12 hours asked for a role allowing 12: only role chaining holds it back, which the
    # function learns with its one GetCallerIdentity probe (the only STS call a dry run may make)
    sts.identity()
    status, _, preview = invoke(post({"role": "long-reader", "duration_seconds": 43200, "dry_run": True}))
    assert status == 200, preview
    sts.assert_done()
    assert preview["Grant"]["GrantedDurationSeconds"] == 3600
    assert preview["Grant"]["LimitedBy"] == ["role_chaining"]

    sts.assume(LONG, duration=3600)
    status, _, real = invoke(post({"role": "long-reader", "duration_seconds": 43200}))
    assert status == 200, real
    sts.assert_done()
    assert real["Grant"] == preview["Grant"]


def test_dry_run_ignores_the_format_it_validated(sts: StsStub) -> None:
    status, _, body = invoke(post({"role": "reports-reader", "format": "credential_process", "dry_run": True}))
    assert status == 200
    assert set(body) == {"DryRun", "Grant", "RequestId"}
    status, _, body = invoke(get("reports-reader", {"format": "container", "dry_run": "true"}))
    assert status == 200
    assert "Token" not in body and "Credentials" not in body


def test_dry_run_false_is_a_real_vend(sts: StsStub) -> None:
    sts.assume(REPORTS, duration=3600)
    status, _, body = invoke(get("reports-reader", {"dry_run": "false"}))
    assert status == 200
    assert "Credentials" in body and "DryRun" not in body
    sts.assert_done()


# -- same authentication, authorization, validation and errors ---------------------------


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        pytest.param(post({"role": "reports-reader", "dry_run": True}, user_arn=None), 401, "Unauthenticated"),
        pytest.param(post({"role": "reports-reader", "dry_run": True}, user_arn=STRANGER), 403, "AccessDenied"),
        pytest.param(post({"role": "long-reader", "dry_run": True}, user_arn=BATCH_USER), 403, "AccessDenied"),
        pytest.param(post({"role": "no-such-role", "dry_run": True}), 403, "AccessDenied"),
        pytest.param(post({"role": "reports-reader", "dry_run": True, "duration_seconds": 0}), 400, "InvalidDuration"),
        pytest.param(post({"role": "reports-reader", "dry_run": "true"}), 400, "InvalidRequest"),
        pytest.param(post({"role": "reports-reader", "dry_run": 1}), 400, "InvalidRequest"),
        pytest.param(post({"role": "reports-reader", "dry_run": None}), 400, "InvalidRequest"),
        pytest.param(post({"role": "reports-reader", "dry_run": True, "format": "xml"}), 400, "InvalidRequest"),
        pytest.param(get("reports-reader", {"dry_run": "yes"}), 400, "InvalidRequest"),
        pytest.param(get("reports-reader", {"dry_run": "True"}), 400, "InvalidRequest"),
        pytest.param(get("reports-reader", {"dry_run": ""}), 400, "InvalidRequest"),
        pytest.param(
            get("reports-reader", multi_query={"dry_run": ["true", "true"]}, query={"dry_run": "true"}),
            400,
            "InvalidRequest",
        ),
    ],
)
def test_dry_run_answers_the_same_errors_as_a_real_request(
    sts: StsStub, event: dict[str, Any], status: int, code: str
) -> None:
    got, _, body = invoke(event)
    assert (got, body["Error"]["Code"]) == (status, code), body
    assert "DryRun" not in body
    sts.assert_done()


# -- audit and metrics --------------------------------------------------------------------


def test_dry_run_is_audited_as_dry_run_and_counted_apart_from_vends(
    sts: StsStub, decisions: Decisions, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    invoke(post({"role": "reports-reader", "duration_seconds": 1200, "dry_run": True}, user_arn=BATCH_USER))
    out = capsys.readouterr().out  # EMF metrics

    [line] = decisions.lines
    assert line["outcome"] == "dry_run"
    assert line["caller"] == "batch"
    assert line["granted_duration"] == 900
    assert line["limited_by"] == ["caller_grant"]
    assert line["sts_attempts"] == 0
    assert line["sts_request_id"] is None
    names = emitted_metrics(out)
    assert "DryRuns" in names
    assert "Vends" not in names and "Clamps" not in names and "StsLatency" not in names


# -- the CloudTrail join -------------------------------------------------------------------


def test_decision_line_carries_the_request_id_sts_answered_with(sts: StsStub, decisions: Decisions) -> None:
    response = assume_role_response(REPORTS, "billing-api") | {
        "ResponseMetadata": {"RequestId": "0f5d3c1e-sts-request-id", "HTTPStatusCode": 200}
    }
    sts.stubber.add_response("assume_role", response)
    status, _, body = invoke(post({"role": "reports-reader"}))
    assert status == 200, body
    [line] = decisions.lines
    assert line["outcome"] == "vended"
    assert line["sts_request_id"] == "0f5d3c1e-sts-request-id"


def test_sts_request_id_is_that_of_the_call_that_issued_after_a_retry(sts: StsStub, decisions: Decisions) -> None:
    sts.identity(f"arn:aws:iam::{ACCOUNT}:user/no-chaining")  # long-term keys: no chaining cap
    sts.error("assume_role", "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration")
    response = assume_role_response(LONG, "billing-api") | {"ResponseMetadata": {"RequestId": "the-second-call"}}
    sts.stubber.add_response("assume_role", response)
    status, _, body = invoke(post({"role": "long-reader", "duration_seconds": 43200}))
    assert status == 200, body
    [line] = decisions.lines
    assert line["sts_attempts"] == 2
    assert line["sts_request_id"] == "the-second-call"


def test_the_issuer_port_is_never_called_on_a_dry_run(policy_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Call counts on the port itself, not only on the wire."""
    from credvend import handler as handler_module
    from credvend.settings import Settings

    class CountingSts:
        max_call_seconds = 1.0

        def __init__(self) -> None:
            self.calls: list[str] = []

        def assume_role(self, **_: Any) -> AssumedRole:
            self.calls.append("assume_role")
            raise AssertionError("a dry run must not assume a role")

        def caller_identity_arn(self) -> str:
            self.calls.append("get_caller_identity")
            return f"arn:aws:sts::{ACCOUNT}:assumed-role/credvend-fn-role/credvend"

    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    port = CountingSts()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=port)
    for event in (
        post({"role": "long-reader", "duration_seconds": 43200, "dry_run": True}),
        get("partner-writer", {"dry_run": "true"}),
        get("reports-reader", {"dry_run": "true", "duration_seconds": "60"}),
    ):
        status, _, body = invoke(event)
        assert status == 200, body
    assert port.calls == ["get_caller_identity"]  # the one per-container probe, nothing else


def test_sts_throttling_counts_as_throttles_not_errors(sts: StsStub, capsys: pytest.CaptureFixture[str]) -> None:
    """The dashboard charts Throttles and alarms on it apart from Errors (infra/components/dashboard.py)."""
    sts.error("assume_role", "Throttling", "Rate exceeded")
    capsys.readouterr()
    status, _, _ = invoke(post({"role": "reports-reader"}))
    assert status == 429
    names = emitted_metrics(capsys.readouterr().out)
    assert "Throttles" in names and "Errors" not in names


def test_every_metric_the_handler_emits_is_a_named_one(sts: StsStub, capsys: pytest.CaptureFixture[str]) -> None:
    """The dashboard and alarms chart credvend/metric_names.py; nothing else may be sent."""
    from credvend import metric_names

    sts.identity()
    sts.assume(LONG, duration=3600)
    sts.error("assume_role", "Throttling", "Rate exceeded")
    sts.error("assume_role", "InternalFailure", "boom", status=500)
    capsys.readouterr()
    for event in (
        post({"role": "long-reader", "duration_seconds": 43200}),  # vend, clamped
        post({"role": "reports-reader"}),  # 429
        post({"role": "reports-reader"}),  # 502
        post({"role": "reports-reader", "dry_run": True}),
        post({"role": "reports-reader"}, user_arn=STRANGER),
        post("{broken"),
    ):
        invoke(event)
    names = emitted_metrics(capsys.readouterr().out)
    assert set(names) <= set(metric_names.ALL)
    assert {"Vends", "Throttles", "Errors", "DryRuns", "Denials", "InvalidRequests", "StsLatency", "Clamps"} <= set(
        names
    )


# -- web_identity roles: no KMS Sign, no AssumeRoleWithWebIdentity ---------------------------


def test_a_web_identity_dry_run_signs_nothing_and_assumes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from tests.unit.test_web_identity import WEB_POLICY, LocalRsaKey, wire

    policy = tmp_path / "policy.yaml"
    policy.write_text(WEB_POLICY)
    key = LocalRsaKey()
    stub = wire(monkeypatch, policy, key)  # nothing queued: any STS call fails the request

    status, _, body = invoke(post({"role": "long-web", "duration_seconds": 43200, "dry_run": True}))

    assert status == 200, body
    assert set(body) == {"DryRun", "Grant", "RequestId"}
    grant = body["Grant"]
    assert (grant["Issuance"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == ("web_identity", 43200, [])
    assert (key.sign_calls, key.public_key_calls) == (0, 0)  # no KMS call at all
    assert stub.tokens == []  # no AssumeRoleWithWebIdentity was even built
    stub.assert_done()


def test_a_web_identity_dry_run_fails_as_a_vend_would_when_the_issuer_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from tests.unit.test_web_identity import WEB_POLICY, LocalRsaKey, wire

    policy = tmp_path / "policy.yaml"
    policy.write_text(WEB_POLICY)
    key = LocalRsaKey()
    wire(monkeypatch, policy, key, issuer=False)
    status, _, body = invoke(post({"role": "long-web", "dry_run": True}))
    assert (status, body["Error"]["Code"]) == (500, "InternalError")
    assert key.sign_calls == 0
