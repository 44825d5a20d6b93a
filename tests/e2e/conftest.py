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
from credvend_local.sts_journal import StsJournal
from credvend_policy.trust import oidc_provider_arn

POLICY_FILE = Path(__file__).with_name("policy.e2e.yaml")


@dataclass(frozen=True)
class Callers:
    user: Credentials  # IAM user credvend-e2e-user: caller e2e-user
    task: Credentials  # session of role credvend-e2e-task: caller e2e-task
    audit: Credentials  # session of role credvend-e2e-audit: caller audit-bot
    stranger: Credentials  # IAM user in no caller's iam_principals


@pytest.fixture(scope="session")
def deployment(localstack, tmp_path_factory: pytest.TempPathFactory) -> cdk_deploy.Deployment:  # noqa: F811
    return cdk_deploy.deploy(localstack.endpoint, policy_file=POLICY_FILE, workdir=tmp_path_factory.mktemp("cdk"))


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
