"""OIDC callers end to end (CONTRACT §10) on the deployed stack: tokens from local issuers
(GitHub- and Kubernetes-shaped), straight from stock SDKs with two environment variables,
and every forgery refused with 401 before any STS call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from credvend_local.oidc_issuer import FORGERIES, write_token_file

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
GH_ARN = "arn:aws:sts::000000000000:assumed-role/ReportsReader/gh-deploy"
K8S_ARN = "arn:aws:sts::000000000000:assumed-role/ReportsReader/k8s-reports"
TIMEOUT = 60


def _post(api_url: str, token: str | None, body: dict[str, Any], *, bearer: bool = True) -> requests.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}" if bearer else token}
    return requests.post(f"{api_url}/oidc/credentials", json=body, headers=headers, timeout=TIMEOUT)


def _whoami(endpoint: str, credentials: dict[str, str]) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken") or credentials["Token"],
    )
    return str(sts.get_caller_identity()["Arn"])


def test_github_shaped_token_vends_and_the_credentials_work(api_url, endpoint, oidc_issuers, sts_journal) -> None:
    mark = sts_journal.mark()
    token = oidc_issuers.github.github_token(repository="acme/app", environment="prod")
    response = _post(api_url, token, {"role": "reports-reader", "duration_seconds": 7200})

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["Grant"]["Caller"] == "gh-deploy"
    assert body["Grant"]["GrantedDurationSeconds"] == 3600  # clamped exactly as the IAM routes clamp
    assert body["Grant"]["LimitedBy"] == ["caller_grant", "role_chaining"]
    assert _whoami(endpoint, body["Credentials"]) == GH_ARN
    (call,) = sts_journal.function_calls(after=mark)
    assert (call["source_identity"], call["outcome"]) == ("gh-deploy", "allowed")


def test_kubernetes_shaped_token_on_the_get_route_bare_header(api_url, endpoint, oidc_issuers) -> None:
    token = oidc_issuers.kubernetes.kubernetes_token(namespace="reports", service_account="reader")
    response = requests.get(
        f"{api_url}/oidc/credentials/reports-reader",
        params={"format": "container"},
        headers={"authorization": token},  # bare, lower-case: what the SDKs' container provider sends
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn", "AccountId"}
    assert _whoami(endpoint, response.json()) == K8S_ARN


def _sdk_environment(api_url: str, endpoint: str, token_file: Path, tmp_path: Path) -> dict[str, str]:
    """Only what a pod or job would set: the credentials URL, the token file, where STS is."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(
        AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{api_url}/oidc/credentials/reports-reader?format=container",
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file),
        AWS_ENDPOINT_URL=endpoint,  # LocalStack's STS (on AWS: nothing to set)
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def test_botocore_container_provider_fetches_from_the_oidc_route(api_url, endpoint, oidc_issuers, tmp_path) -> None:
    token_file = write_token_file(
        tmp_path / "token", oidc_issuers.kubernetes.kubernetes_token(namespace="reports", service_account="reader")
    )
    code = (
        "import boto3, json; s = boto3.Session(); c = s.get_credentials(); "
        "print(json.dumps({'method': c.method, 'arn': s.client('sts').get_caller_identity()['Arn']}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=_sdk_environment(api_url, endpoint, token_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == {"method": "container-role", "arn": K8S_ARN}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
@pytest.mark.parametrize("mode", ["default-chain", "from-http"])
def test_aws_sdk_for_javascript_v3_fetches_from_the_oidc_route(api_url, endpoint, oidc_issuers, tmp_path, mode) -> None:
    token_file = write_token_file(
        tmp_path / "token", oidc_issuers.github.github_token(repository="acme/app", environment="prod")
    )
    result = subprocess.run(
        ["node", str(REPO / "tests" / "e2e" / "js" / "container_credentials.mjs"), mode],
        env=_sdk_environment(api_url, endpoint, token_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["Arn"] == GH_ARN
    assert answer["Expiration"]


@pytest.mark.parametrize("kind", [*FORGERIES, "no_header"])
def test_forgeries_are_401_and_reach_no_sts(api_url, oidc_issuers, sts_journal, kind) -> None:
    mark = sts_journal.mark()
    issuer = oidc_issuers.github
    claims = issuer.github_claims(repository="acme/app", environment="prod")
    token = None if kind == "no_header" else issuer.forge(kind, claims)
    response = _post(api_url, token, {"role": "reports-reader"})

    assert response.status_code == 401, (kind, response.text)
    assert response.json()["Error"]["Code"] == "Unauthenticated"
    assert sts_journal.function_calls(after=mark) == []


def test_valid_tokens_of_no_caller_or_two_callers_are_403(api_url, oidc_issuers, sts_journal) -> None:
    mark = sts_journal.mark()
    github = oidc_issuers.github
    nobody = github.github_token(repository="acme/app", environment="staging")
    both = github.github_token(repository="acme/shared", environment=None, ref="refs/heads/main")
    for token in (nobody, both):
        response = _post(api_url, token, {"role": "audit-reader"})
        assert (response.status_code, response.json()["Error"]["Code"]) == (403, "AccessDenied")
    assert sts_journal.function_calls(after=mark) == []


def test_unreachable_jwks_is_503(api_url, oidc_issuers, sts_journal) -> None:
    mark = sts_journal.mark()
    claims = {**oidc_issuers.github.github_claims(), "iss": oidc_issuers.offline_url}
    response = _post(api_url, oidc_issuers.github.mint(claims), {"role": "reports-reader"})
    assert (response.status_code, response.json()["Error"]["Code"]) == (503, "UpstreamUnavailable")
    assert sts_journal.function_calls(after=mark) == []


def test_iam_routes_refuse_a_bearer_token(api_url, oidc_issuers) -> None:
    token = oidc_issuers.github.github_token(repository="acme/app", environment="prod")
    response = requests.post(
        f"{api_url}/credentials",
        json={"role": "reports-reader"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code in (401, 403), response.text


def test_client_token_file(api_url, endpoint, oidc_issuers, tmp_path) -> None:
    token_file = write_token_file(
        tmp_path / "token", oidc_issuers.github.github_token(repository="acme/app", environment="prod")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}
    env.update(
        CREDVEND_ENDPOINT=api_url,
        CREDVEND_TOKEN_FILE=str(token_file),
        PYTHONPATH=os.pathsep.join([str(REPO / "client"), str(REPO / "lambda_src")]),
    )
    result = subprocess.run(
        [sys.executable, "-m", "credvend_client.cli", "credential-process", "reports-reader"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["Version"] == 1
    assert _whoami(endpoint, document) == GH_ARN


def test_an_oidc_callers_twelve_hour_ask_on_a_web_identity_role_is_granted(api_url, endpoint, oidc_issuers) -> None:
    import datetime as dt

    token = oidc_issuers.github.github_token(repository="acme/app", environment="prod")
    response = _post(api_url, token, {"role": "batch-writer", "duration_seconds": 43200})

    assert response.status_code == 200, response.text
    body = response.json()
    grant = body["Grant"]
    assert (grant["Caller"], grant["Issuance"]) == ("gh-deploy", "web_identity")
    assert (grant["RequestedDurationSeconds"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (
        43200,
        43200,
        [],
    )
    expiration = dt.datetime.fromisoformat(body["Credentials"]["Expiration"].replace("Z", "+00:00"))
    assert (expiration - dt.datetime.now(dt.UTC)).total_seconds() > 43200 - 300
    assert _whoami(endpoint, body["Credentials"]) == "arn:aws:sts::000000000000:assumed-role/BatchWriter/gh-deploy"
