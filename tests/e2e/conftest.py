"""End-to-end fixtures: one LocalStack, one deployment of the real stack, real callers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from credvend_local import deploy as cdk_deploy
from credvend_local.fixtures import localstack  # noqa: F401 - the session fixture, re-exported
from credvend_local.identities import ACCOUNT, create_role_session, create_user
from credvend_local.oidc_issuer import LocalOidcIssuer
from credvend_local.sts_journal import StsJournal
from credvend_policy.trust import oidc_provider_arn

POLICY_FILE = Path(__file__).with_name("policy.e2e.yaml")


@dataclass(frozen=True)
class Callers:
    user: Credentials  # IAM user credvend-e2e-user: caller e2e-user
    task: Credentials  # session of role credvend-e2e-task: caller e2e-task
    audit: Credentials  # session of role credvend-e2e-audit: caller audit-bot
    stranger: Credentials  # IAM user in no caller's iam_principals


@dataclass(frozen=True)
class OidcIssuers:
    github: LocalOidcIssuer
    kubernetes: LocalOidcIssuer
    offline_url: str  # an issuer in the policy whose JWKS nobody serves


@pytest.fixture(scope="session")
def oidc_issuers() -> Iterator[OidcIssuers]:
    """Local OIDC issuers (loopback http; the deployed function runs as a host process)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with LocalOidcIssuer() as github, LocalOidcIssuer() as kubernetes:
        yield OidcIssuers(github=github, kubernetes=kubernetes, offline_url=f"http://127.0.0.1:{closed}")


def _with_live_issuers(tmp: Path, issuers: OidcIssuers) -> Path:
    """policy.e2e.yaml with its issuers' placeholder URLs replaced by the running issuers'."""
    import yaml

    document = yaml.safe_load(POLICY_FILE.read_text())
    urls = {"github": issuers.github.url, "kubernetes": issuers.kubernetes.url, "offline": issuers.offline_url}
    for name, url in urls.items():
        document["issuers"][name]["url"] = url
    path = tmp / "policy.e2e.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def deployed_policy_file(tmp_path_factory: pytest.TempPathFactory, oidc_issuers: OidcIssuers) -> Path:
    """The policy file the session deploys: policy.e2e.yaml with the live issuers' URLs.
    A test that redeploys the session's stack must use this one, not POLICY_FILE, or the
    OIDC callers' issuers would change under the other tests."""
    return _with_live_issuers(tmp_path_factory.mktemp("policy"), oidc_issuers)


@pytest.fixture(scope="session")
def deployment(
    localstack,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    deployed_policy_file: Path,
) -> cdk_deploy.Deployment:
    return cdk_deploy.deploy(
        localstack.endpoint, policy_file=deployed_policy_file, workdir=tmp_path_factory.mktemp("cdk")
    )


@pytest.fixture(scope="session")
def endpoint(localstack) -> str:  # noqa: F811
    return str(localstack.endpoint)


@pytest.fixture(scope="session")
def api_url(deployment: cdk_deploy.Deployment) -> str:
    return deployment.api_url


@pytest.fixture(scope="session")
def callers(endpoint: str, deployment: cdk_deploy.Deployment) -> Iterator[Callers]:
    yield Callers(
        user=create_user(endpoint, "credvend-e2e-user"),
        task=create_role_session(endpoint, "credvend-e2e-task"),
        audit=create_role_session(endpoint, "credvend-e2e-audit"),
        stranger=create_user(endpoint, "credvend-e2e-stranger"),
    )


@pytest.fixture(scope="session")
def sts_journal(endpoint: str, deployment: cdk_deploy.Deployment) -> StsJournal:
    """What the deployed function sent to STS (the LocalStack STS rules' journal)."""
    issuer = deployment.outputs.get("IssuerUrl")  # web_identity calls are unsigned: they name the provider
    provider = oidc_provider_arn(issuer, partition="aws", account=ACCOUNT) if issuer else None
    return StsJournal(endpoint, deployment.outputs["FunctionRoleArn"], issuer_provider_arn=provider)
