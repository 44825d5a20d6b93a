"""``credvend get/credential-process --token-file PATH`` (or $CREDVEND_TOKEN_FILE): OIDC callers
reach the OIDC routes with ``Authorization: Bearer <token>`` and never sign (CONTRACT §10)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from credvend_client import api
from tests.client.client_fakes import STAGE, FakeCredvend

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW5ldmVyLXByaW50ZWQ"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")  # a trailing newline, as `echo` writes it: tolerated
    return path


@pytest.mark.parametrize("via", ["option", "env"])
@pytest.mark.parametrize(
    ("argv", "fmt"),
    [(["get", "reports-reader"], "json"), (["credential-process", "reports-reader"], "credential_process")],
)
def test_token_file_uses_the_oidc_route_with_a_bearer_token_and_no_signature(
    fake: FakeCredvend,
    endpoint: str,
    run_cli: Any,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    fmt: str,
    via: str,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name)  # a workload without AWS credentials or region
    monkeypatch.setenv(api.RECURSION_ENV, "")
    if via == "env":
        monkeypatch.setenv(api.TOKEN_FILE_ENV, str(token_file))
        result = run_cli(*argv)
    else:
        result = run_cli(*argv, "--token-file", str(token_file))

    assert result.code == 0, result.err
    (request,) = fake.requests
    assert request.path.startswith(f"{STAGE}/oidc/credentials/reports-reader?")
    assert request.query["format"] == fmt
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert not any(name.startswith("x-amz-") for name in request.headers)
    assert TOKEN not in result.out + result.err
    assert json.loads(result.out)


def test_token_is_read_again_for_every_request(fake: FakeCredvend, endpoint: str, token_file: Path) -> None:
    client = api.build_client(endpoint=None, region=None, profile=None, token_file=str(token_file))
    client.vend("reports-reader")
    token_file.write_text("a.b.c")  # the issuer rotated it
    client.vend("reports-reader")
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {TOKEN}", "Bearer a.b.c"]


@pytest.mark.parametrize("content", [None, "", "two tokens", "\xff"])
def test_unusable_token_file_is_a_usage_error(
    fake: FakeCredvend, endpoint: str, run_cli: Any, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    result = run_cli("get", "reports-reader", "--token-file", str(path))
    assert result.code == 2
    assert "TokenFile" in result.err
    assert fake.requests == []


def test_denied_token_is_exit_3(fake: FakeCredvend, endpoint: str, run_cli: Any, token_file: Path) -> None:
    from tests.client.client_fakes import error

    fake.script(error(401, "Unauthenticated", "The request carries no verified caller identity."))
    result = run_cli("get", "reports-reader", "--token-file", str(token_file))
    assert result.code == 3
    assert TOKEN not in result.err
    assert os.path.exists(token_file)
