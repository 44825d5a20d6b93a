"""``credvend get --dry-run`` and ``credvend policy explain`` (CONTRACT §11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.client.client_fakes import ROLE_ARN, FakeCredvend, Scripted

POLICY = """\
version: 1
defaults:
  duration_seconds: 3600
  session_name: "{caller}/{role}"
roles:
  reports-reader:
    create: true
    max_session_duration: 14400
  long-reader:
    create: true
    role_name: Long
    max_session_duration: 43200
  partner-writer:
    arn: arn:aws:iam::210987654321:role/PartnerWriter
callers:
  billing-api:
    iam_principals: [arn:aws:iam::123456789012:role/billing-api-task]
    grants:
      - {role: reports-reader, max_duration_seconds: 7200}
      - {role: long-reader, max_duration_seconds: 43200}
  batch:
    iam_principals: [arn:aws:iam::123456789012:user/batch]
    grants:
      - {role: reports-reader, max_duration_seconds: 900}
"""
BILLING_SESSION = "arn:aws:sts::123456789012:assumed-role/billing-api-task/i-0abc"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


# --- get --dry-run --------------------------------------------------------------------------


DRY_RUN_ANSWER = {
    "DryRun": True,
    "Grant": {"Caller": "billing-api", "Role": "reports-reader", "RoleArn": ROLE_ARN, "GrantedDurationSeconds": 3600},
    "RequestId": "req-dry",
}


def test_get_dry_run_asks_for_a_dry_run_and_prints_the_grant(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    fake.script(Scripted(200, DRY_RUN_ANSWER))
    result = run_cli("get", "reports-reader", "--dry-run", "--duration", "43200")
    assert result.code == 0, result.err
    assert json.loads(result.out) == DRY_RUN_ANSWER
    assert fake.requests[0].query == {"format": "json", "duration_seconds": "43200", "dry_run": "true"}
    assert fake.issued == []


def test_get_dry_run_refuses_an_answer_with_credentials(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    result = run_cli("get", "reports-reader", "--dry-run")  # the fake ignores dry_run and vends
    assert result.code == 4
    assert "InvalidResponse" in result.err
    assert result.out == ""
    for issued in fake.issued:
        assert issued["SecretAccessKey"] not in result.err


def test_get_dry_run_has_no_credential_formats(fake: FakeCredvend, endpoint: str, run_cli: Any) -> None:
    result = run_cli("get", "reports-reader", "--dry-run", "--format", "env")
    assert result.code == 2
    assert fake.requests == []


# --- policy explain ---------------------------------------------------------------------------


def explain(run_cli: Any, policy: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("policy", "explain", str(policy), *args)
    return result.code, json.loads(result.out), result.err


@pytest.mark.parametrize(
    ("principal", "role", "duration", "granted", "limited_by"),
    [
        (BILLING_SESSION, "long-reader", "43200", 3600, ["role_chaining"]),
        (BILLING_SESSION, "reports-reader", "43200", 3600, ["role_chaining"]),
        (BILLING_SESSION, "reports-reader", "1800", 1800, []),
        (BILLING_SESSION, "reports-reader", "60", 900, ["sts_minimum"]),
        ("arn:aws:iam::123456789012:user/batch", "reports-reader", "3600", 900, ["caller_grant"]),
    ],
)
def test_explain_prints_the_services_grant(
    run_cli: Any, policy: Path, principal: str, role: str, duration: str, granted: int, limited_by: list[str]
) -> None:
    code, answer, err = explain(run_cli, policy, "--role", role, "--principal", principal, "--duration", duration)
    assert code == 0, err
    grant = answer["Grant"]
    assert (grant["RequestedDurationSeconds"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == (
        int(duration),
        granted,
        limited_by,
    )
    assert answer["DryRun"] is True
    assert "Credentials" not in answer
    assert any("role chaining" in line for line in answer["Assumptions"])


def test_explain_names_the_session_as_the_service_does(run_cli: Any, policy: Path) -> None:
    code, answer, _ = explain(run_cli, policy, "--role", "long-reader", "--principal", BILLING_SESSION)
    assert code == 0
    assert answer["Grant"]["RoleSessionName"] == "billing-api-long-reader"  # "/" is not legal in STS names
    assert answer["Grant"]["SourceIdentity"] == "billing-api"
    assert answer["Grant"]["RoleArn"] == "arn:aws:iam::123456789012:role/Long"
    assert answer["Grant"]["RequestedDurationSeconds"] == 3600  # the policy's default


def test_explain_account_places_created_roles(run_cli: Any, policy: Path) -> None:
    code, answer, _ = explain(
        run_cli, policy, "--role", "reports-reader", "--principal", BILLING_SESSION, "--account", "999988887777"
    )
    assert code == 0
    assert answer["Grant"]["RoleArn"] == "arn:aws:iam::999988887777:role/ReportsReader"


@pytest.mark.parametrize(
    ("principal", "role", "reason"),
    [
        ("arn:aws:iam::123456789012:user/stranger", "reports-reader", "unknown_caller"),
        ("arn:aws:iam::123456789012:user/batch", "long-reader", "not_granted"),
        (BILLING_SESSION, "no-such-role", "unknown_role"),
    ],
)
def test_explain_says_why_a_caller_is_denied(
    run_cli: Any, policy: Path, principal: str, role: str, reason: str
) -> None:
    code, answer, err = explain(run_cli, policy, "--role", role, "--principal", principal)
    assert code == 3
    assert answer["Error"] == {
        "Code": "AccessDenied",
        "Message": "The caller is not allowed to get credentials for this role.",
        "Reason": reason,
    }
    assert "Grant" not in answer
    assert err.startswith("credvend: error: AccessDenied") and reason in err


def test_explain_rejects_what_is_not_a_principal(run_cli: Any, policy: Path) -> None:
    code, answer, _ = explain(run_cli, policy, "--role", "reports-reader", "--principal", "billing-api")
    assert code == 3
    assert answer["Error"]["Code"] == "Unauthenticated"


def test_explain_matches_the_function_on_the_same_policy(run_cli: Any, policy: Path) -> None:
    """The same decision code: the function's dry run (STS stubbed as a Lambda's role session)
    and the offline explanation agree, field for field."""
    from credvend.domain.requests import VendRequest
    from credvend.domain.vend import Decision, VendService
    from credvend_policy import load_policy

    class LambdaSts:
        max_call_seconds = 1.0

        def caller_identity_arn(self) -> str:
            return "arn:aws:sts::123456789012:assumed-role/credvend-fn/credvend"

        def assume_role(self, **_: Any) -> Any:
            raise AssertionError("dry run")

    from credvend.domain.formats import grant_document

    service = VendService(load_policy(policy), LambdaSts())
    service.learn_home("arn:aws:lambda:eu-west-1:123456789012:function:credvend")
    for role, duration in (("long-reader", 43200), ("reports-reader", 5000), ("reports-reader", 100)):
        request = VendRequest(role=role, duration_seconds=duration, dry_run=True)
        grant = service.preview(request, principal_arn=BILLING_SESSION, decision=Decision(request_id="explain"))
        code, answer, _ = explain(
            run_cli, policy, "--role", role, "--principal", BILLING_SESSION, "--duration", str(duration)
        )
        assert code == 0
        assert answer["Grant"] == grant_document(grant)


def test_explain_reports_an_invalid_policy_with_paths(run_cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroles: {r: {create: true, nope: 1}}\ncallers: {}\n")
    result = run_cli("policy", "explain", str(bad), "--role", "r", "--principal", BILLING_SESSION)
    assert result.code == 2
    assert "roles.r.nope" in result.err


def test_the_distribution_ships_the_pure_domain_and_not_the_function(tmp_path: Path) -> None:
    """`pip install .` must give `policy explain` the decision code, and nothing that needs
    Powertools or the STS adapter (pyproject.toml)."""
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(repo),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("credvend-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("explain", "vend", "authorize", "clamp", "naming", "requests", "formats", "errors"):
        assert f"credvend/domain/{module}.py" in names
    assert not any(name.startswith(("credvend/handler", "credvend/adapters", "credvend/settings")) for name in names)
    assert "credvend/__init__.py" not in names  # a namespace: the function's package is not installed


def test_explain_knows_web_identity_grants_are_not_role_chaining(run_cli: Any, tmp_path: Path) -> None:
    web = tmp_path / "web.yaml"
    web.write_text(
        POLICY.replace(
            "    role_name: Long\n    max_session_duration: 43200\n",
            "    role_name: Long\n    max_session_duration: 43200\n    issuance: web_identity\n",
        )
    )
    code, answer, err = explain(
        run_cli, web, "--role", "long-reader", "--principal", BILLING_SESSION, "--duration", "43200"
    )
    assert code == 0, err
    grant = answer["Grant"]
    assert (grant["Issuance"], grant["GrantedDurationSeconds"], grant["LimitedBy"]) == ("web_identity", 43200, [])
    code, answer, _ = explain(
        run_cli, web, "--role", "reports-reader", "--principal", BILLING_SESSION, "--duration", "43200"
    )
    assert (answer["Grant"]["Issuance"], answer["Grant"]["LimitedBy"]) == ("assume_role", ["role_chaining"])


# --- policy explain for OIDC callers ---------------------------------------------------------

OIDC_POLICY = """\
version: 1
roles:
  deployer:
    create: true
    max_session_duration: 43200
    issuance: web_identity
  reports-reader:
    create: true
    max_session_duration: 14400
issuers:
  github:
    url: https://token.actions.githubusercontent.com
    audiences: [credvend]
callers:
  deploy-prod:
    oidc:
      - issuer: github
        claims: {sub: "repo:acme/app:environment:prod", repository_owner: acme}
    grants:
      - {role: deployer, max_duration_seconds: 43200}
      - {role: reports-reader, max_duration_seconds: 43200}
"""
PROD_CLAIMS = json.dumps({"sub": "repo:acme/app:environment:prod", "repository_owner": "acme", "aud": "credvend"})


@pytest.fixture
def oidc_policy(tmp_path: Path) -> Path:
    path = tmp_path / "oidc-policy.yaml"
    path.write_text(OIDC_POLICY)
    return path


@pytest.mark.parametrize(
    ("role", "granted", "limited_by", "issuance"),
    [("deployer", 43200, [], "web_identity"), ("reports-reader", 3600, ["role_chaining"], "assume_role")],
)
def test_explain_an_oidc_caller_from_its_claims(
    run_cli: Any, oidc_policy: Path, role: str, granted: int, limited_by: list[str], issuance: str
) -> None:
    code, answer, err = explain(
        run_cli, oidc_policy, "--role", role, "--claims", PROD_CLAIMS, "--issuer", "github", "--duration", "43200"
    )
    assert code == 0, err
    grant = answer["Grant"]
    assert grant["Caller"] == "deploy-prod"
    assert (grant["GrantedDurationSeconds"], grant["LimitedBy"], grant["Issuance"]) == (granted, limited_by, issuance)
    assert any("verification" in line for line in answer["Assumptions"])


def test_explain_claims_that_match_no_caller_are_denied_with_the_reason(run_cli: Any, oidc_policy: Path) -> None:
    other = json.dumps({"sub": "repo:acme/app:environment:staging", "repository_owner": "acme"})
    code, answer, _ = explain(run_cli, oidc_policy, "--role", "deployer", "--claims", other, "--issuer", "github")
    assert code == 3
    assert answer["Error"] == {
        "Code": "AccessDenied",
        "Message": "The caller is not allowed to get credentials for this role.",
        "Reason": "no_matching_caller",
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--claims", PROD_CLAIMS],  # no --issuer
        ["--issuer", "github", "--principal", "arn:aws:iam::123456789012:user/x"],
        ["--claims", "{not json", "--issuer", "github"],
        ["--claims", '{"aud": "credvend"}', "--issuer", "github"],  # no sub
        ["--claims", PROD_CLAIMS, "--issuer", "gitlab"],  # not in the file
    ],
)
def test_explain_oidc_usage_errors(run_cli: Any, oidc_policy: Path, args: list[str]) -> None:
    result = run_cli("policy", "explain", str(oidc_policy), "--role", "deployer", *args)
    assert result.code == 2, (result.out, result.err)
