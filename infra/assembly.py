"""Build the CDK app from the deployment settings and the policy file.

``app.py`` is a thin wrapper around :func:`build_app`; tests call it with their own
``App`` (and a ready asset directory, so they need no pip downloads).
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from credvend_policy import load_policy
from infra.bundling import build_function_bundle
from infra.config import CONTEXT_KEYS, config_from_context
from infra.quota_checks import QuotaChecks
from infra.stacks.credvend_stack import ACCOUNT_PLACEHOLDER, CredvendStack

TRUST_POLICY_DIR = "credvend-trust-policies"


# What the CDK CLI puts in CDK_DEFAULT_REGION when nothing configures a Region (no
# AWS_REGION/AWS_DEFAULT_REGION, no `region` in the profile, no EC2 instance metadata): it
# says so only at debug level, so a template would be pinned to us-east-1 silently.
CLI_FALLBACK_REGION = "us-east-1"
_REGION_VARIABLES = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION")


def _ini_region(path: Path, section: str) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    return parser.get(section, "region", fallback=None) or None


def configured_region(environ: Mapping[str, str]) -> str | None:
    """The Region the user configured, found as the CDK CLI looks for it (variables, then
    the profile's ``region`` in the shared credentials and config files), without any AWS
    call. None when only the CLI's us-east-1 fallback (or instance metadata) could apply."""
    for name in _REGION_VARIABLES:
        if environ.get(name):
            return environ[name]
    home = Path(environ.get("HOME") or Path.home())
    credentials = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials")
    config = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    for name in dict.fromkeys((profile, "default")):
        found = _ini_region(credentials, name) or _ini_region(config, name if name == "default" else f"profile {name}")
        if found:
            return found
    return None


def stack_environment(environ: Mapping[str, str], *, warn: Callable[[str], None] | None = None) -> Environment | None:
    """The account and Region the CDK CLI resolved, if it did; otherwise environment-agnostic.

    Read from the environment only: the app itself never calls AWS. A Region that is only
    the CLI's silent us-east-1 fallback is not pinned: the template stays Region-agnostic
    and ``warn`` says where a deploy would go.
    """
    account = environ.get("CDK_DEFAULT_ACCOUNT") or None
    region = environ.get("CDK_DEFAULT_REGION") or None
    if region == CLI_FALLBACK_REGION and configured_region(environ) is None:
        region = None
        if warn is not None:
            warn(
                "credvend: no AWS Region is configured (AWS_REGION, AWS_DEFAULT_REGION or the profile's region); "
                f"the CDK CLI falls back to {CLI_FALLBACK_REGION}, so `cdk deploy` would deploy there. "
                "The template is synthesized Region-agnostic; set AWS_REGION to choose the Region."
            )
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def build_app(app: App, *, code_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> CredvendStack:
    """Add the credvend stack and the cdk-nag checks to ``app``.

    Raises ``PolicyError`` (bad policy file) or ``ConfigError`` (bad context value).
    ``code_dir`` is a ready asset directory; by default the bundler builds one.
    """
    environ = os.environ if environ is None else environ
    config = config_from_context({key: app.node.try_get_context(key) for key in CONTEXT_KEYS}, environ)
    policy = load_policy(config.policy_file)
    if code_dir is None:
        code_dir = build_function_bundle(policy_file=config.policy_file, architecture=config.architecture)
    stack = CredvendStack(
        app,
        config.stack_name,
        policy=policy,
        config=config,
        function_code_dir=code_dir,
        env=stack_environment(environ, warn=_stderr),
        description="credvend: short-lived AWS credentials by policy file",
    )
    # AwsSolutions at app scope: every finding fails the synth unless acknowledged on
    # the construct it concerns (see infra/nag.py).
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # AWS's quotas on every generated document: a synth that passes deploys (infra/quota_checks.py).
    stack.quota_checks = QuotaChecks(config.limits)
    Validations.of(app).add_plugins(stack.quota_checks)
    write_trust_policies(stack, Path(app.outdir))
    return stack


def write_trust_policies(stack: CredvendStack, outdir: Path) -> dict[str, Path]:
    """Write ``<outdir>/credvend-trust-policies/<alias>.json`` for every ``arn:`` role.

    Stale files from an earlier synth are removed, so the folder always matches the policy.
    """
    folder = outdir / TRUST_POLICY_DIR
    shutil.rmtree(folder, ignore_errors=True)
    documents = stack.external_trust_policies()
    if not documents:
        return {}
    folder.mkdir(parents=True)
    written = {}
    for alias, document in documents.items():
        path = folder / f"{alias}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        written[alias] = path
    if ACCOUNT_PLACEHOLDER in stack.function_role_arn_literal:
        print(
            f"credvend: account unknown at synth; {folder} names {stack.function_role_arn_literal} "
            "(set CDK_DEFAULT_ACCOUNT, or use the stack's TrustPolicies output after deploy)",
            file=sys.stderr,
        )
    return written
