"""The formats, consumed by stock AWS tools with no credvend code on the consuming side."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import boto3
import pytest

from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e
ROLE_ARN = "arn:aws:sts::000000000000:assumed-role/ReportsReader/e2e-user"


def _profile_session(config: Path, profile: str, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> boto3.Session:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config.with_name("no-credentials")))
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    return boto3.Session(profile_name=profile, region_name="us-east-1")


@pytest.mark.parametrize("route", ["post", "get"])
def test_every_format_on_both_routes(api_url, callers, route) -> None:
    shapes = {
        "json": {"Credentials", "AssumedRoleUser", "Grant", "RequestId"},
        "credential_process": {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"},
        "container": {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn", "AccountId"},
    }
    for fmt, keys in shapes.items():
        if route == "post":
            body = {"role": "reports-reader", "format": fmt}
            response = signed_request("POST", f"{api_url}/credentials", callers.user, body=body)
        else:
            params = {"format": fmt}
            response = signed_request("GET", f"{api_url}/credentials/reports-reader", callers.user, params=params)
        assert response.status_code == 200, describe(response)
        assert set(response.json()) == keys, fmt
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl with --aws-sigv4 (7.75+)")
def test_credential_process_format_feeds_a_stock_boto3_profile(api_url, callers, endpoint, tmp_path, monkeypatch):
    # curl signs the request itself: the consuming side has no credvend code at all.
    monkeypatch.setenv("E2E_KEY", callers.user.access_key)
    monkeypatch.setenv("E2E_SECRET", callers.user.secret_key)
    # Parameters in sorted order: curl before 8.1 signs the query string unsorted.
    url = f"{api_url}/credentials/reports-reader?duration_seconds=900&format=credential_process"
    curl = f'curl -sSf --aws-sigv4 aws:amz:us-east-1:execute-api --user "$E2E_KEY:$E2E_SECRET" {shlex.quote(url)}'
    config = tmp_path / "config"
    config.write_text(f"[profile vended]\ncredential_process = sh -c {shlex.quote(curl)}\n")

    session = _profile_session(config, "vended", endpoint, monkeypatch)
    identity = session.client("sts").get_caller_identity()

    assert identity["Arn"] == ROLE_ARN
    assert session.get_credentials().method == "custom-process"
