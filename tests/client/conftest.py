"""Fixtures for the client's unit tests: a fake credvend API and a clean AWS environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from credvend_client import api, cli
from tests.client.client_fakes import FAST_RETRY, REGION, SOURCE_KEY, SOURCE_SECRET, SOURCE_TOKEN, FakeCredvend


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Only the variables a test sets: no profile, config file or container URI of the machine."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "CREDVEND_")):
            monkeypatch.delenv(name)
    env = {
        "AWS_ACCESS_KEY_ID": SOURCE_KEY,
        "AWS_SECRET_ACCESS_KEY": SOURCE_SECRET,
        "AWS_SESSION_TOKEN": SOURCE_TOKEN,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def fake() -> Iterator[FakeCredvend]:
    with FakeCredvend() as service:
        yield service


@pytest.fixture
def endpoint(fake: FakeCredvend, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CREDVEND_ENDPOINT", fake.url)
    monkeypatch.setattr(cli, "DEFAULT_RETRY", FAST_RETRY)
    monkeypatch.setattr(cli, "SERVE_RETRY", FAST_RETRY)
    return fake.url


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``run_cli("get", "reports-reader")`` -> Run(code, out, err), through ``cli.main``.

    ``credential-process`` marks the process environment against recursion; the marker is
    undone after the test, or every later credential_process run in this test process
    (the end-to-end tests' among them) would refuse to start.
    """
    monkeypatch.setenv(api.RECURSION_ENV, "")

    def run(*argv: str) -> Run:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
