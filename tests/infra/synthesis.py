"""Synthesize the real CDK app (infra.assembly.build_app) from policies written for the tests.

Each synth costs a few seconds, so every stack a module needs is synthesized once
(module-scoped fixtures in conftest.py). The function asset is a stub directory unless a test asks for
the real bundler: infra tests need no pip downloads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii prints a banner for every Node it considers end-of-life; it says nothing about our code.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from credvend_policy import Policy, load_policy
from infra.assembly import build_app
from infra.stacks.credvend_stack import CredvendStack

REPO_ROOT = Path(__file__).resolve().parents[2]
# The feature flags and settings `cdk synth` uses, so tests see the same template.
CDK_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]

ACCOUNT = "111122223333"
REGION = "eu-west-1"
ACCOUNT_ENV = {"CDK_DEFAULT_ACCOUNT": ACCOUNT, "CDK_DEFAULT_REGION": REGION}

# A policy that exercises every shape: a named and a PascalCase-named created role, a role
# no caller is granted, a role in another account with an external id, two callers.
BASE_POLICY = """\
version: 1
defaults:
  duration_seconds: 3600
roles:
  reports-reader:
    create: true
    max_session_duration: 14400
    managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
  deployer:
    create: true
    role_name: CredvendDeployer
    max_session_duration: 43200
  dormant:
    create: true
  partner-writer:
    arn: arn:aws:iam::210987654321:role/PartnerWriter
    max_session_duration: 7200
    external_id: a-shared-id
callers:
  billing-api:
    iam_principals: [arn:aws:iam::123456789012:role/billing-api-task]
    grants:
      - role: reports-reader
        max_duration_seconds: 7200
      - role: partner-writer
  ci:
    iam_principals: [arn:aws:iam::123456789012:user/ci]
    grants:
      - role: reports-reader
      - role: deployer
        max_duration_seconds: 43200
"""


@dataclass(frozen=True)
class Synth:
    """One synthesized app: the stack object, its template and where it was written."""

    stack: CredvendStack
    template: Template
    outdir: Path
    policy: Policy

    @property
    def resources(self) -> dict[str, Any]:
        return self.template.to_json()["Resources"]

    @property
    def outputs(self) -> dict[str, Any]:
        return self.template.to_json().get("Outputs", {})

    def logical_id(self, construct: Any) -> str:
        """The logical ID CDK gave a construct (asked of the stack, never hard-coded)."""
        target = construct.node.default_child if not isinstance(construct, cdk.CfnElement) else construct
        return self.stack.resolve(self.stack.get_logical_id(target))

    @property
    def function_role_id(self) -> str:
        return self.logical_id(self.stack.vending.role)

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}


def stub_asset(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "README").write_text("stub asset for infrastructure tests\n")
    return directory


def synth(
    workdir: Path,
    policy_text: str,
    *,
    context: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    real_bundle: bool = False,
) -> Synth:
    """Write ``policy_text`` to ``workdir`` and synthesize the app from it.

    The function asset is a stub directory, or with ``real_bundle`` whatever ``app.py``
    would bundle (infra/bundling.py).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    policy_file = workdir / "policy.yaml"
    policy_file.write_text(policy_text)
    outdir = workdir / "cdk.out"
    app = cdk.App(context={**CDK_CONTEXT, "policy": str(policy_file), **(context or {})}, outdir=str(outdir))
    code_dir = None if real_bundle else stub_asset(workdir / "asset")
    stack = build_app(app, code_dir=code_dir, environ=environ or {})
    app.synth()  # runs the cdk-nag plugin: an unacknowledged finding raises here
    return Synth(stack=stack, template=Template.from_stack(stack), outdir=outdir, policy=load_policy(policy_file))


def statements_of(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_statements(api: Synth) -> list[dict[str, Any]]:
    """Every statement of every identity policy the execution role carries."""
    role_id = api.function_role_id
    statements = [
        statement
        for inline in api.resources[role_id]["Properties"].get("Policies", [])
        for statement in statements_of(inline["PolicyDocument"])
    ]
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in api.of_type(kind).values():
            if {"Ref": role_id} in policy["Properties"].get("Roles", []):
                statements += statements_of(policy["Properties"]["PolicyDocument"])
    return statements
