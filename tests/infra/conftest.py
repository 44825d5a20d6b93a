"""Synths shared by the infrastructure tests: each is built once per test session."""

from __future__ import annotations

import pytest

from tests.infra.synthesis import ACCOUNT_ENV, BASE_POLICY, Synth, synth


@pytest.fixture(scope="session")
def agnostic(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The base policy, environment-agnostic (what `make synth` does without credentials)."""
    return synth(tmp_path_factory.mktemp("agnostic"), BASE_POLICY)


@pytest.fixture(scope="session")
def in_account(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The base policy with the account and Region the CDK CLI resolves from credentials."""
    return synth(tmp_path_factory.mktemp("in-account"), BASE_POLICY, environ=ACCOUNT_ENV)
