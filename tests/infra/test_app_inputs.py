"""What app.py accepts: the policy path, context values, and how it refuses bad ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest

from credvend_policy import PolicyError
from infra.assembly import build_app
from infra.config import ConfigError, config_from_context
from tests.infra.synthesis import CDK_CONTEXT, REPO_ROOT, stub_asset

BAD_POLICY = """\
version: 1
roles:
  reports-reader:
    create: true
    max_session_duration: 99999
callers:
  billing-api:
    iam_principals: [arn:aws:iam::123456789012:role/billing-api-task]
    grants:
      - role: no-such-role
"""


def test_bad_policy_fails_the_build_naming_file_and_paths(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(BAD_POLICY)
    app = cdk.App(context={**CDK_CONTEXT, "policy": str(policy_file)}, outdir=str(tmp_path / "cdk.out"))
    with pytest.raises(PolicyError) as caught:
        build_app(app, code_dir=stub_asset(tmp_path / "asset"), environ={})
    message = str(caught.value)
    assert str(policy_file) in message
    assert "roles.reports-reader.max_session_duration" in message


def test_app_py_exits_non_zero_with_the_problem_and_no_traceback(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(BAD_POLICY.replace("99999", "3600"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "AWS_"))}
    env.update(CREDVEND_POLICY=str(policy_file), CDK_OUTDIR=str(tmp_path / "cdk.out"))
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    assert str(policy_file) in result.stderr
    assert "callers.billing-api.grants.0.role" in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_path_precedence() -> None:
    assert config_from_context({}, {}).policy_file == Path("policy.yaml")
    assert config_from_context({}, {"CREDVEND_POLICY": "env.yaml"}).policy_file == Path("env.yaml")
    assert config_from_context({"policy": "ctx.yaml"}, {"CREDVEND_POLICY": "env.yaml"}).policy_file == Path("ctx.yaml")


def test_context_strings_from_the_command_line_are_parsed() -> None:
    config = config_from_context(
        {
            "architecture": "x86_64",
            "reserved_concurrency": "5",
            "log_retention_days": "30",
            "throttle_rate_limit": "2.5",
            "throttle_burst_limit": "10",
            "api_cloudwatch_role": "false",
            "stack_name": "Credvend-Dev",
        },
        {},
    )
    assert (config.architecture, config.reserved_concurrency, config.log_retention_days) == ("x86_64", 5, 30)
    assert (config.throttle_rate_limit, config.throttle_burst_limit) == (2.5, 10)
    assert config.api_cloudwatch_role is False
    assert config.function_role_name == "Credvend-Dev-VendingFunction"


def test_defaults() -> None:
    config = config_from_context({}, {})
    assert config.architecture == "arm64"
    assert config.reserved_concurrency is None
    assert config.log_retention_days == 365
    assert config.api_cloudwatch_role is True


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("architecture", "sparc"),
        ("reserved_concurrency", "0"),
        ("reserved_concurrency", "many"),
        ("log_retention_days", 10),
        ("throttle_rate_limit", "-1"),
        ("api_cloudwatch_role", "yes"),
        ("stack_name", "9lives"),
        ("stack_name", "x" * 41),
        ("stack_name", "Credvend\n"),  # a whole-string match: `$` would take the newline
    ],
)
def test_bad_context_value_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"context `{key}`"):
        config_from_context({key: value}, {})


def test_region_is_pinned_only_when_configured(tmp_path: Path) -> None:
    from infra.assembly import stack_environment

    warnings: list[str] = []
    home = {"HOME": str(tmp_path)}  # no ~/.aws at all
    assert stack_environment({}, warn=warnings.append) is None
    # The CDK CLI's silent fallback: not pinned, and said out loud.
    assert stack_environment({**home, "CDK_DEFAULT_REGION": "us-east-1"}, warn=warnings.append) is None
    (warning,) = warnings
    assert "us-east-1" in warning
    assert "AWS_REGION" in warning
    fallback_with_account = stack_environment(
        {**home, "CDK_DEFAULT_REGION": "us-east-1", "CDK_DEFAULT_ACCOUNT": "111122223333"}, warn=warnings.append
    )
    assert fallback_with_account is not None
    assert (fallback_with_account.account, fallback_with_account.region) == ("111122223333", None)
    # us-east-1 chosen on purpose, by variable or by the profile's config, is pinned.
    chosen = stack_environment({**home, "CDK_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"})
    assert chosen is not None and chosen.region == "us-east-1"
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile ops]\nregion = us-east-1\n")
    by_profile = stack_environment({**home, "CDK_DEFAULT_REGION": "us-east-1", "AWS_PROFILE": "ops"})
    assert by_profile is not None and by_profile.region == "us-east-1"
    other = stack_environment({**home, "CDK_DEFAULT_REGION": "eu-west-1"})
    assert other is not None and other.region == "eu-west-1"


def test_raisable_quotas_and_organization_come_from_context() -> None:
    config = config_from_context(
        {"trust_policy_quota": "4096", "managed_policies_per_role": 20, "organization_id": "o-a1b2c3d4e5"}, {}
    )
    assert config.limits.trust_policy == 4096
    assert config.limits.managed_policies_per_role == 20
    assert config.organization_id == "o-a1b2c3d4e5"
    defaults = config_from_context({}, {})
    assert (defaults.limits.trust_policy, defaults.limits.managed_policies_per_role) == (2048, 10)
    assert defaults.organization_id is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("trust_policy_quota", "8192"),
        ("trust_policy_quota", "1024"),
        ("managed_policies_per_role", "21"),
        ("organization_id", "my-org"),
    ],
)
def test_bad_quota_or_organization_names_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"context `{key}`"):
        config_from_context({key: value}, {})
