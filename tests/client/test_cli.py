"""The command line: output formats, exit codes, one-line errors, nothing secret on stderr."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from credvend_client import api, cli
from credvend_client.api import RetryPolicy, parse_retry_after
from tests.client.client_fakes import (
    ACCOUNT,
    FAST_RETRY,
    SOURCE_SECRET,
    SOURCE_TOKEN,
    FakeCredvend,
    Scripted,
    error,
)

REPO = Path(__file__).resolve().parents[2]


def assert_no_secret(fake: FakeCredvend, text: str) -> None:
    for secret in (SOURCE_SECRET, SOURCE_TOKEN):
        assert secret not in text
    for issued in fake.issued:
        assert issued["SecretAccessKey"] not in text
        assert issued["SessionToken"] not in text


# --- formats ----------------------------------------------------------------------------------


def test_get_json_prints_the_envelope(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    result = run_cli("get", "reports-reader", "--duration", "7200")
    assert result.code == 0, result.err
    envelope = json.loads(result.out)
    assert envelope["Credentials"] == fake.issued[0]
    assert envelope["Grant"]["Role"] == "reports-reader"
    assert fake.requests[0].query == {"format": "json", "duration_seconds": "7200"}
    assert result.err == ""


def test_get_env_prints_export_lines(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    result = run_cli("get", "reports-reader", "--format", "env")
    assert result.code == 0, result.err
    issued = fake.issued[0]
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.out.splitlines())
    assert {name: shlex.split(value)[0] for name, value in exports.items()} == {
        "AWS_ACCESS_KEY_ID": issued["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": issued["SecretAccessKey"],
        "AWS_SESSION_TOKEN": issued["SessionToken"],
        "AWS_CREDENTIAL_EXPIRATION": issued["Expiration"],
    }


def test_get_env_output_is_safe_to_eval_in_a_shell(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    result = run_cli("get", "reports-reader", "--format", "env")
    shell = subprocess.run(
        ["bash", "-c", result.out + 'printf %s "$AWS_SESSION_TOKEN"'], capture_output=True, text=True, check=True
    )
    assert shell.stdout == fake.issued[0]["SessionToken"]


@pytest.mark.parametrize(
    "argv", [["get", "reports-reader", "--format", "credential-process"], ["credential-process", "reports-reader"]]
)
def test_credential_process_document(fake: FakeCredvend, endpoint: str, run_cli: Any, argv: list[str]) -> None:
    result = run_cli(*argv)
    assert result.code == 0, result.err
    document = json.loads(result.out)
    issued = fake.issued[0]
    assert document == {"Version": 1, **issued, "AccountId": ACCOUNT}
    assert fake.requests[0].query == {"format": "credential_process"}
    if argv[0] == "credential-process":
        assert result.out.count("\n") == 1  # one line of JSON, nothing else on stdout


def _subprocess_env(fake: FakeCredvend, aws_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "CREDVEND_"))}
    env.update(aws_env)
    env["CREDVEND_ENDPOINT"] = fake.url
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "client"), str(REPO / "lambda_src")])
    env.update(extra)
    return env


def test_botocore_runs_it_as_credential_process(
    fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    command = f"{sys.executable} -m credvend_client.cli credential-process reports-reader --duration 900"
    config.write_text(f"[profile vended]\ncredential_process = {command}\n")
    for name, value in _subprocess_env(fake, aws_env, AWS_CONFIG_FILE=str(config)).items():
        monkeypatch.setenv(name, value)

    credentials = botocore.session.Session(profile="vended").get_credentials()

    assert credentials.method == "custom-process"
    assert credentials.get_frozen_credentials().token == fake.issued[0]["SessionToken"]
    assert fake.requests[0].query == {"format": "credential_process", "duration_seconds": "900"}


def test_credential_process_refuses_to_recurse_into_itself(
    fake: FakeCredvend, aws_env: dict[str, str], tmp_path: Path
) -> None:
    # AWS_PROFILE names the profile whose credential_process is credvend: signing would run it again.
    config = tmp_path / "config"
    config.write_text(
        textwrap.dedent(f"""\
        [profile vended]
        credential_process = {sys.executable} -m credvend_client.cli credential-process reports-reader
        """)
    )
    env = _subprocess_env(fake, aws_env, AWS_CONFIG_FILE=str(config), AWS_PROFILE="vended")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name)
    command = [sys.executable, "-m", "credvend_client.cli", "credential-process", "reports-reader"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CredentialProcessLoop" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert fake.requests == []


# --- errors: exit codes and one line on stderr ------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "code", "needle"),
    [
        (
            [error(403, "AccessDenied", "not allowed", request_id="rid-403")],
            3,
            "AccessDenied: not allowed (HTTP 403, request id rid-403)",
        ),
        ([error(401, "Unauthenticated", "no identity")], 3, "Unauthenticated"),
        (
            [
                Scripted(
                    403,
                    {"message": "The security token included in the request is invalid."},
                    {"x-amzn-ErrorType": "UnrecognizedClientException:http://internal"},
                )
            ],
            3,
            "UnrecognizedClientException: The security token included in the request is invalid. "
            "(HTTP 403, request id hdr-req-id)",
        ),
        ([error(400, "InvalidDuration", "duration_seconds must be 1..43200")], 2, "InvalidDuration"),
        ([error(413, "PayloadTooLarge", "too big")], 2, "PayloadTooLarge"),
        ([error(429, "Throttled", "slow down", **{"Retry-After": "0"})] * 4, 4, "Throttled: slow down (HTTP 429"),
        ([error(502, "UpstreamError", "STS failed")] * 4, 4, "UpstreamError: STS failed (HTTP 502"),
        ([Scripted(500, b"<html>boom\n</html>")] * 4, 4, "HTTP500: the service answered without an error document"),
        ([Scripted(200, b"not json")], 4, "InvalidResponse"),
        (
            [Scripted(200, {"Credentials": {"AccessKeyId": "A"}})],
            4,
            "InvalidResponse: the answer has no SecretAccessKey",
        ),
    ],
)
def test_error_exit_codes_and_one_line_stderr(
    fake: FakeCredvend, endpoint: str, run_cli: Any, answers: list[Scripted], code: int, needle: str
) -> None:
    fake.script(answers)
    result = run_cli("get", "reports-reader")
    assert result.code == code
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("credvend: error: ")
    assert needle in result.err
    assert_no_secret(fake, result.err)


def test_429_and_5xx_are_retried_then_succeed(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script(error(429, "Throttled", "slow down", **{"Retry-After": "0"}), error(503, "UpstreamUnavailable", "t/o"))
    result = run_cli("get", "reports-reader")
    assert result.code == 0
    assert len(fake.requests) == 3


def test_attempts_are_bounded(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script([error(503, "UpstreamUnavailable", "down")] * 10)
    assert run_cli("get", "reports-reader").code == 4
    assert len(fake.requests) == FAST_RETRY.max_attempts


def test_denied_is_not_retried(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script([error(403, "AccessDenied", "no")] * 3)
    assert run_cli("get", "reports-reader").code == 3
    assert len(fake.requests) == 1


def test_retry_after_is_honoured(fake: FakeCredvend, endpoint: str) -> None:
    fake.script(error(429, "Throttled", "slow down", **{"Retry-After": "3"}))
    client = api.build_client(endpoint=None, region=None, profile=None, retry=FAST_RETRY)
    slept: list[float] = []
    client._sleep = slept.append
    client.vend("reports-reader")
    assert slept == [3.0]


def test_a_retry_after_beyond_the_cap_fails_at_once(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script(error(429, "Throttled", "slow down", **{"Retry-After": "120"}))
    result = run_cli("get", "reports-reader")
    assert result.code == 4
    assert "retry after 120 s" in result.err
    assert len(fake.requests) == 1


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.delay(attempt, None, rand=lambda: 1.0) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert policy.delay(3, None, rand=lambda: 0.0) == 0.0
    assert policy.delay(1, 7.0, rand=lambda: 1.0) == 7.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("5", now=0) == 5.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now=10) == 20.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


def test_network_error_is_exit_4(aws_env: dict[str, str], run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(cli, "DEFAULT_RETRY", FAST_RETRY)
    result = run_cli("get", "reports-reader", "--endpoint", f"http://127.0.0.1:{port}/prod")
    assert result.code == 4
    assert "NetworkError" in result.err and len(result.err.splitlines()) == 1


def test_read_timeout_is_exit_4(
    fake: FakeCredvend, endpoint: str, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.delay = 0.5
    monkeypatch.setattr(cli, "DEFAULT_RETRY", RetryPolicy(max_attempts=2, base_delay=0.001))
    result = run_cli("get", "reports-reader", "--timeout", "0.1")
    assert result.code == 4
    assert "NetworkError: ReadTimeoutError" in result.err
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["get"], "Usage: the following arguments are required: ROLE"),
        (["get", "reports-reader", "--duration", "0"], "Usage: argument --duration"),
        (["get", "reports-reader", "--format", "yaml"], "Usage: argument --format"),
        (["get", "../etc"], "InvalidRole"),
        (["get", "reports-reader\n"], "InvalidRole"),
        (["get", "reports-reader", "--duration", "900\n"], "Usage: argument --duration"),
        (["get", "reports-reader", "--duration", " 900"], "Usage: argument --duration"),
        (["get", "reports-reader", "--duration", "9_00"], "Usage: argument --duration"),
        (["get", "reports-reader", "--duration", "٩٠٠"], "Usage: argument --duration"),
        (["get", "reports-reader", "--duration", "-900"], "Usage: argument --duration"),
        (["serve", "--port", "80\n"], "Usage: argument --port"),
        (["credential-process", "reports-reader\n"], "InvalidRole"),
        (["frobnicate"], "Usage: argument COMMAND: invalid choice"),
    ],
)
def test_usage_errors_are_exit_2_on_one_line(endpoint: str, run_cli: Any, argv: list[str], needle: str) -> None:
    result = run_cli(*argv)
    assert result.code == 2
    assert needle in result.err
    assert len(result.err.splitlines()) == 1


def test_no_endpoint_is_a_usage_error(aws_env: dict[str, str], run_cli: Any) -> None:
    result = run_cli("get", "reports-reader")
    assert (result.code, result.err.strip()) == (
        2,
        "credvend: error: NoEndpoint: no endpoint: pass --endpoint URL or set CREDVEND_ENDPOINT (the API stage URL)",
    )


def test_no_credentials_is_a_usage_error(
    fake: FakeCredvend, endpoint: str, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    result = run_cli("get", "reports-reader")
    assert result.code == 2
    assert "NoCredentials" in result.err
    assert fake.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["get"],
        ["credential-process"],
        ["serve"],
        ["trust-policy"],
        ["policy"],
        ["policy", "check"],
        ["policy", "explain"],
    ],
)
def test_every_command_has_help(run_cli: Any, argv: list[str]) -> None:
    result = run_cli(*argv, "--help")
    assert result.code == 0
    assert result.out.startswith("usage: credvend")


# --- offline commands -------------------------------------------------------------------------


def test_policy_check_accepts_the_repo_policy(run_cli: Any) -> None:
    result = run_cli("policy", "check", str(REPO / "policy.yaml"))
    assert result.code == 0
    assert result.out.strip().endswith("ok (2 role(s), 1 caller(s))")


def test_policy_check_reports_each_problem_with_its_path(run_cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        textwrap.dedent("""\
        version: 1
        roles:
          reader: {create: true, surprise: 1}
        callers:
          app:
            iam_principals: [arn:aws:iam::123456789012:role/app]
            grants: [{role: writer, max_duration_seconds: 60}]
        """)
    )
    result = run_cli("policy", "check", str(bad))
    assert result.code == 2
    lines = result.err.splitlines()
    assert any("roles.reader.surprise" in line for line in lines)
    assert any("callers.app.grants.0.max_duration_seconds" in line for line in lines)
    assert lines[-1].startswith("credvend: error: InvalidPolicy")
    assert result.out == ""


def test_policy_check_default_file_from_env(run_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(tmp_path / "missing.yaml"))
    result = run_cli("policy", "check")
    assert result.code == 2
    assert "missing.yaml" in result.err and "cannot read" in result.err


def _generated_policy_file(tmp_path: Path, **options: Any) -> str:
    from credvend_local.policy_gen import generate_policy

    path = tmp_path / "generated.json"
    path.write_text(json.dumps(generate_policy(**options)))
    return str(path)


def test_policy_check_holds_a_thousand_callers_against_aws_quotas(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("policy", "check", "--quotas", _generated_policy_file(tmp_path, callers=1000, roles=200))
    assert result.code == 0, result.err
    assert "API resource policy" in result.out
    assert "API Gateway resource policy length quota of 8,192" in result.out
    assert "trust policy of role 'role-000' (Role000)" in result.out
    assert " exceeds " not in result.out
    assert result.out.strip().endswith("ok (200 role(s), 1000 caller(s))")


def test_policy_check_warns_when_a_trust_policy_drops_its_list(run_cli: Any, tmp_path: Path) -> None:
    crowded = _generated_policy_file(tmp_path, callers=300, roles=1)
    result = run_cli("policy", "check", crowded)
    assert result.code == 0
    assert "role 'role-000' requires a source identity without listing its callers" in result.err
    raised = run_cli("policy", "check", crowded, "--trust-policy-quota", "4096")
    assert raised.code == 0
    assert raised.err == ""


def test_policy_check_fails_a_document_over_its_quota(run_cli: Any, tmp_path: Path) -> None:
    from credvend_local.policy_gen import generate_policy

    document = generate_policy(callers=250, roles=5)
    for index, caller in enumerate(document["callers"].values()):  # 250 caller accounts
        caller["iam_principals"] = [f"arn:aws:iam::{index + 100_000_000_000:012d}:role/caller"]
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(document))
    result = run_cli("policy", "check", str(path))
    assert result.code == 2
    assert "over quota: API resource policy" in result.err
    assert "exceeds API Gateway resource policy length quota of 8,192" in result.err
    assert "OverQuota" in result.err
    # ...which an organization id fixes
    assert run_cli("policy", "check", str(path), "--organization-id", "o-a1b2c3d4e5").code == 0


def test_trust_policy_command_applies_the_same_budget(run_cli: Any, tmp_path: Path) -> None:
    from credvend_local.policy_gen import generate_policy

    document = generate_policy(callers=300, roles=1)
    document["roles"]["role-000"] = {"arn": "arn:aws:iam::210987654321:role/Partner", "max_session_duration": 3600}
    path = tmp_path / "crowded.json"
    path.write_text(json.dumps(document))
    vending = "arn:aws:iam::123456789012:role/Credvend-VendingFunction"
    result = run_cli("trust-policy", "role-000", "--policy", str(path), "--vending-role-arn", vending)
    assert result.code == 0, result.err
    (statement,) = json.loads(result.out)["Statement"]
    assert statement["Condition"]["Null"] == {"sts:SourceIdentity": "false"}
    assert "do not fit the trust policy quota" in result.err
    listed = run_cli(
        "trust-policy", "role-000", "--policy", str(path), "--vending-role-arn", vending, "--trust-policy-quota", "4096"
    )
    (statement,) = json.loads(listed.out)["Statement"]
    assert len(statement["Condition"]["StringEquals"]["sts:SourceIdentity"]) == 300


def test_trust_policy_is_the_shared_builders_document(run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from credvend_policy import load_policy, trust_policy_document

    vending = "arn:aws:iam::123456789012:role/credvend-vending-fn"
    policy_file = str(REPO / "policy.yaml")
    result = run_cli("trust-policy", "partner-writer", "--policy", policy_file, "--vending-role-arn", vending)
    assert result.code == 0, result.err
    expected = trust_policy_document(load_policy(policy_file), "partner-writer", vending_role_arn=vending)
    assert json.loads(result.out) == expected

    monkeypatch.setenv("CREDVEND_VENDING_ROLE_ARN", vending)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", policy_file)
    assert json.loads(run_cli("trust-policy", "partner-writer").out) == expected


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["trust-policy", "partner-writer"], "NoVendingRole"),
        (["trust-policy", "partner-writer", "--vending-role-arn", "not-an-arn"], "InvalidArn"),
        (["trust-policy", "nope", "--vending-role-arn", "arn:aws:iam::123456789012:role/x"], "UnknownRole"),
    ],
)
def test_trust_policy_usage_errors(run_cli: Any, argv: list[str], needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDVEND_VENDING_ROLE_ARN", raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(REPO / "policy.yaml"))
    result = run_cli(*argv)
    assert result.code == 2
    assert needle in result.err


WEB_POLICY = """\
version: 1
roles:
  partner-web:
    arn: arn:aws:iam::210987654321:role/PartnerWeb
    max_session_duration: 43200
    issuance: web_identity
  own-web:
    create: true
    issuance: web_identity
callers:
  app:
    iam_principals: [arn:aws:iam::123456789012:role/app]
    grants:
      - role: partner-web
        max_duration_seconds: 43200
"""


def test_trust_policy_of_an_external_web_identity_role_names_the_provider_to_create(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from credvend_policy import parse_policy, trust_policy_document

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(WEB_POLICY)
    issuer = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
    monkeypatch.delenv("CREDVEND_VENDING_ROLE_ARN", raising=False)
    monkeypatch.delenv("CREDVEND_ISSUER", raising=False)
    monkeypatch.setenv("CREDVEND_ENDPOINT", issuer + "/")  # the stage URL is the issuer
    result = run_cli("trust-policy", "partner-web", "--policy", str(policy_file))
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    provider_arn = "arn:aws:iam::210987654321:oidc-provider/abc123.execute-api.eu-west-1.amazonaws.com/v1"
    assert printed["OpenIDConnectProvider"] == {
        "Url": issuer,
        "ClientIDList": ["sts.amazonaws.com"],
        "Arn": provider_arn,
    }
    expected = trust_policy_document(
        parse_policy(WEB_POLICY), "partner-web", vending_role_arn="", issuer=issuer, oidc_provider_arn=provider_arn
    )
    assert printed["TrustPolicy"] == expected
    assert expected["Statement"][0]["Principal"] == {"Federated": provider_arn}

    monkeypatch.delenv("CREDVEND_ENDPOINT")
    assert "NoIssuer" in run_cli("trust-policy", "partner-web", "--policy", str(policy_file)).err
    assert "NotExternal" in run_cli("trust-policy", "own-web", "--policy", str(policy_file), "--issuer", issuer).err
