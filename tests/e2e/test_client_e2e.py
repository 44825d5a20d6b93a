"""The `credvend` command against the deployed stack: how services consume credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.credentials import Credentials

pytestmark = pytest.mark.e2e
CREDVEND = str(Path(sys.executable).with_name("credvend"))
AWS_CLI = str(Path(sys.executable).with_name("aws"))  # awscli is in requirements/lock.txt
REPORTS_READER = "arn:aws:sts::000000000000:assumed-role/ReportsReader/{caller}"


def _env(api_url: str, endpoint: str, home: Path, creds: Credentials | None = None) -> dict[str, str]:
    """A clean environment: the endpoint, the region, and (optionally) the signer's own keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(
        CREDVEND_ENDPOINT=api_url,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,  # for the consuming tools' own STS calls, on LocalStack
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
    )
    if creds is not None:
        env.update(AWS_ACCESS_KEY_ID=creds.access_key, AWS_SECRET_ACCESS_KEY=creds.secret_key)
        if creds.token:
            env["AWS_SESSION_TOKEN"] = creds.token
    return env


def _write_profiles(home: Path, caller: Credentials) -> None:
    """`caller` signs for credvend; `vended` gets its credentials from credvend."""
    (home / "credentials").write_text(
        f"[caller]\naws_access_key_id = {caller.access_key}\naws_secret_access_key = {caller.secret_key}\n"
    )
    (home / "config").write_text(
        "[profile vended]\n"
        f"credential_process = {CREDVEND} credential-process reports-reader --profile caller --duration 900\n"
    )


def test_credential_process_profile_feeds_boto3(api_url, endpoint, callers, tmp_path, monkeypatch) -> None:
    _write_profiles(tmp_path, callers.user)
    for name, value in _env(api_url, endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    session = boto3.Session(profile_name="vended")
    assert session.client("sts").get_caller_identity()["Arn"] == REPORTS_READER.format(caller="e2e-user")
    assert session.get_credentials().method == "custom-process"


def test_credential_process_profile_feeds_the_aws_cli(api_url, endpoint, callers, tmp_path) -> None:
    _write_profiles(tmp_path, callers.user)
    result = subprocess.run(
        [str(AWS_CLI), "sts", "get-caller-identity", "--profile", "vended", "--output", "json"],
        env=_env(api_url, endpoint, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Arn"] == REPORTS_READER.format(caller="e2e-user")


@pytest.fixture
def sidecar(api_url, endpoint, callers, tmp_path) -> Iterator[dict]:
    """`credvend serve` signing as the e2e-task role session, as a sidecar container would."""
    token_file = tmp_path / "token"
    proc = subprocess.Popen(
        [CREDVEND, "serve", "--port", "0", "--role", "reports-reader", "--token-file", str(token_file)],
        env=_env(api_url, endpoint, tmp_path, callers.task),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline() or "{}")
        assert ready.get("event") == "ready", proc.stderr.read() if proc.poll() is not None else ready
        yield ready
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not token_file.exists()  # removed on exit


def test_sidecar_feeds_boto3_container_provider(sidecar, endpoint, tmp_path, monkeypatch) -> None:
    token_file = Path(sidecar["token_file"])
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert not token_file.read_bytes().endswith(b"\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"{sidecar['url']}reports-reader")
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))

    session = boto3.Session(region_name="us-east-1")
    sts = session.client("sts", endpoint_url=endpoint)
    assert sts.get_caller_identity()["Arn"] == REPORTS_READER.format(caller="e2e-task")
    assert session.get_credentials().method == "container-role"


def test_get_exit_codes_and_one_line_errors(api_url, endpoint, callers, tmp_path) -> None:
    ok = subprocess.run(
        [CREDVEND, "get", "reports-reader", "--format", "env", "--duration", "900"],
        env=_env(api_url, endpoint, tmp_path, callers.user),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "export AWS_SESSION_TOKEN=" in ok.stdout

    denied = subprocess.run(
        [CREDVEND, "get", "reports-reader"],
        env=_env(api_url, endpoint, tmp_path, callers.stranger),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert denied.returncode == 3
    assert denied.stdout == ""
    assert len(denied.stderr.strip().splitlines()) == 1
    assert "AccessDenied" in denied.stderr
    assert callers.stranger.secret_key not in denied.stderr


def test_trust_policy_command_matches_the_stack_output(deployment, tmp_path) -> None:
    from tests.e2e.conftest import POLICY_FILE

    result = subprocess.run(
        [
            CREDVEND,
            "trust-policy",
            "partner-writer",
            "--policy",
            str(POLICY_FILE),
            "--vending-role-arn",
            deployment.outputs["FunctionRoleArn"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(deployment.outputs["TrustPolicies"])["partner-writer"]
