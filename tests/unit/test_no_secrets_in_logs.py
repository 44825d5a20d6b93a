"""Run vends with every logger at DEBUG and fail if a secret key or session token shows up
anywhere: Python logging (botocore included), Powertools' JSON logs, EMF metrics on stdout."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from credvend import handler as handler_module
from credvend.domain import web_identity
from credvend.settings import Settings
from tests.unit.conftest import BATCH_USER, STRANGER, FakeLambdaContext, rest_event


@pytest.fixture
def web_policy_file(policy_file: Path) -> Path:
    """The unit tests' policy plus a web_identity role granted to billing-api."""
    text = policy_file.read_text().replace(
        "roles:\n",
        "roles:\n  web-reader:\n    create: true\n    max_session_duration: 43200\n    issuance: web_identity\n",
        1,
    )
    text = text.replace(
        "    grants:\n      - role: reports-reader\n        max_duration_seconds: 7200\n",
        "    grants:\n      - role: reports-reader\n        max_duration_seconds: 7200\n"
        "      - role: web-reader\n        max_duration_seconds: 43200\n",
        1,
    )
    assert "web-reader" in text.split("callers:")[1]
    policy_file.write_text(text)
    return policy_file


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


CALLER_SESSION_TOKEN = "caller-own-session-token-in-the-request-headers"


@pytest.mark.filterwarnings("ignore:POWERTOOLS_DEV")
def test_no_secret_in_any_log(
    web_policy_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAFUNCTIONKEY00000",
        "AWS_SECRET_ACCESS_KEY": "function-own-secret-never-logged",
        "AWS_SESSION_TOKEN": "function-own-session-token-never-logged",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "CREDVEND_POLICY_FILE": str(web_policy_file),
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        # everything a careless operator could switch on; none may print a secret
        "POWERTOOLS_DEV": "true",
        "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
        "POWERTOOLS_LOGGER_LOG_EVENT": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    caplog.set_level(logging.DEBUG)
    collector = _Collect()
    logging.getLogger().addHandler(collector)
    powertools_logger = logging.getLogger("credvend")
    powertools_logger.addHandler(collector)
    secrets: set[str] = {
        "function-own-secret-never-logged",
        "function-own-session-token-never-logged",
        CALLER_SESSION_TOKEN,
    }
    tokens: list[str] = []
    real_encode = web_identity.encode_token

    def keep_token(*args: Any, **kwargs: Any) -> Any:
        token = real_encode(*args, **kwargs)
        tokens.append(token.get_secret_value())
        return token

    monkeypatch.setattr(web_identity, "encode_token", keep_token)
    try:
        with mock_aws():
            # The issuer's key, so web_identity vends sign real tokens (which must never be logged).
            # The test's own set-up call is not the function's: it is not logged at all.
            logging.disable(logging.CRITICAL)
            try:
                key = boto3.client("kms", region_name="eu-west-1").create_key(
                    KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY"
                )["KeyMetadata"]["KeyId"]
            finally:
                logging.disable(logging.NOTSET)
            monkeypatch.setenv("CREDVEND_ISSUER", "https://abc123.execute-api.eu-west-1.amazonaws.com/v1")
            monkeypatch.setenv("CREDVEND_SIGNING_KEY", key)
            handler_module.reset_runtime(settings=Settings.from_env())  # the real boto3 adapters
            events = [
                rest_event("POST", "/credentials", body={"role": "reports-reader", "duration_seconds": 43200}),
                rest_event("POST", "/credentials", body={"role": "reports-reader", "format": "credential_process"}),
                rest_event("GET", "/credentials/reports-reader", query={"format": "container"}),
                rest_event("GET", "/credentials/partner-writer", query={"duration_seconds": "900"}),
                rest_event("POST", "/credentials", body={"role": "long-reader"}, user_arn=BATCH_USER),
                rest_event("POST", "/credentials", body={"role": "reports-reader"}, user_arn=STRANGER),
                rest_event("POST", "/credentials", body="{broken"),
                rest_event("POST", "/credentials", body={"role": "web-reader", "duration_seconds": 43200}),
                rest_event("GET", "/credentials/web-reader", query={"format": "container"}, request_id="req-web-2"),
            ]
            statuses = []
            for event in events:
                event["headers"]["X-Amz-Security-Token"] = CALLER_SESSION_TOKEN
                event["multiValueHeaders"]["X-Amz-Security-Token"] = [CALLER_SESSION_TOKEN]
                result = handler_module.handler(event, FakeLambdaContext())
                statuses.append(result["statusCode"])
                body = json.loads(result["body"])
                for holder in (body, body.get("Credentials", {})):
                    for key in ("SecretAccessKey", "SessionToken", "Token"):
                        if key in holder:
                            secrets.add(holder[key])
    finally:
        logging.getLogger().removeHandler(collector)
        powertools_logger.removeHandler(collector)

    assert statuses == [200, 200, 200, 200, 403, 403, 400, 200, 200]
    assert len(secrets) >= 2 + 6 * 2  # every vend brought new secrets to look for
    assert len(tokens) == 2
    secrets.update(tokens)
    secrets.update(token.rsplit(".", 1)[1] for token in tokens)  # the signature alone is the secret part

    stream = io.StringIO()
    for record in collector.records + caplog.records:
        stream.write(record.getMessage())
        stream.write(repr(record.__dict__))
        stream.write("\n")
    captured = capsys.readouterr()
    everything = stream.getvalue() + caplog.text + captured.out + captured.err

    # DEBUG really was on: botocore spoke, and the audit lines were written
    assert any(record.name.startswith("botocore") and record.levelno == logging.DEBUG for record in caplog.records)
    assert "credential vend decision" in everything
    assert "Credentials" in everything or "AssumeRole" in everything

    leaked = sorted(secret for secret in secrets if secret in everything)
    assert not leaked, f"{len(leaked)} secret value(s) found in log output"


@pytest.mark.filterwarnings("ignore:POWERTOOLS_DEV")
def test_no_oidc_token_in_any_log(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bearer tokens (valid, forged, refused) are secrets too: never in a log line, at any level."""
    from credvend_local.oidc_issuer import FORGERIES, LocalOidcIssuer
    from tests.unit.test_oidc import oidc_event, oidc_policy

    with LocalOidcIssuer() as github, LocalOidcIssuer() as kubernetes:
        policy = tmp_path / "policy.yaml"
        policy.write_text(oidc_policy(github.url, kubernetes.url, "http://127.0.0.1:9"))
        for name, value in {
            "AWS_ACCESS_KEY_ID": "AKIAFUNCTIONKEY00000",
            "AWS_SECRET_ACCESS_KEY": "function-own-secret-never-logged",
            "AWS_SESSION_TOKEN": "function-own-session-token-never-logged",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "CREDVEND_POLICY_FILE": str(policy),
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "POWERTOOLS_DEV": "true",
            "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
            "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
        caplog.set_level(logging.DEBUG)
        collector = _Collect()
        logging.getLogger().addHandler(collector)
        logging.getLogger("credvend").addHandler(collector)
        claims = github.github_claims(repository="acme/app", environment="prod")
        tokens = [
            github.mint(claims),
            kubernetes.kubernetes_token(namespace="ci", service_account="deployer"),
            github.github_token(repository="acme/app", environment="staging"),  # valid, no caller: 403
            *(github.forge(kind, claims) for kind in FORGERIES),
        ]
        secrets: set[str] = set(tokens)
        statuses = []
        try:
            with mock_aws():
                handler_module.reset_runtime(settings=Settings.from_env())  # the real boto3 adapter
                for index, token in enumerate(tokens):
                    role = "reports-reader" if index == 1 else "deployer"
                    event = oidc_event(
                        "POST", "/oidc/credentials", token=token, body={"role": role}, bearer=index % 2 == 0
                    )
                    result = handler_module.handler(event, FakeLambdaContext())
                    statuses.append(result["statusCode"])
                    body = json.loads(result["body"])
                    secrets.update(
                        body.get("Credentials", {}).get(key, "") for key in ("SecretAccessKey", "SessionToken")
                    )
        finally:
            logging.getLogger().removeHandler(collector)
            logging.getLogger("credvend").removeHandler(collector)
    secrets.discard("")

    assert statuses == [200, 200, 403, *([401] * len(FORGERIES))]
    stream = io.StringIO()
    for record in collector.records + caplog.records:
        stream.write(record.getMessage())
        stream.write(repr(record.__dict__))
        stream.write("\n")
    captured = capsys.readouterr()
    everything = stream.getvalue() + caplog.text + captured.out + captured.err
    assert "credential vend decision" in everything
    assert "repo:acme/app:environment:prod" in everything  # the subject is logged, the token is not
    # a token's signature is the part that must never leak; header/claims segments are not secret alone
    leaked = sorted(secret for secret in secrets if secret in everything)
    signatures = sorted(t.rsplit(".", 1)[1] for t in tokens if len(t.rsplit(".", 1)[1]) > 8)
    assert not leaked, f"{len(leaked)} secret value(s) found in log output"
    assert not [s for s in signatures if s in everything], "a token signature was logged"
