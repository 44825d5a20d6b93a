"""cdk-nag AwsSolutions: nothing unacknowledged, every acknowledgement on its construct."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from tests.infra.synthesis import BASE_POLICY, CDK_CONTEXT, Synth, stub_asset


def test_awssolutions_reports_nothing_unacknowledged(agnostic: Synth) -> None:
    report = AwsSolutionsChecks().validate_scope(agnostic.stack.node.root)
    assert [violation.rule_name for violation in report.violations] == []
    assert report.success


def test_synth_has_no_error_or_warning_annotations(agnostic: Synth) -> None:
    annotations = Annotations.from_stack(agnostic.stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_warning("*", Match.any_value()) == []


def test_acknowledgements_sit_on_resources_with_reasons(agnostic: Synth) -> None:
    found = []
    for construct in agnostic.stack.node.root.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            assert not isinstance(construct, cdk.Stage | cdk.Stack), (
                f"stack-wide acknowledgement on {construct.node.path}"
            )
            for rule, reason in entry.data.items():
                assert len(reason) > 30, rule
                found.append(rule.removeprefix("Annotation::"))
    # finding level, not the whole rule
    assert "AwsSolutions-IAM4[Policy::arn:aws:iam::aws:policy/ReadOnlyAccess]" in found
    assert all("[" in rule for rule in found if rule.startswith("AwsSolutions-IAM"))


def test_an_unacknowledged_finding_fails_the_synth(tmp_path) -> None:
    from infra.assembly import build_app

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(BASE_POLICY)
    app = cdk.App(context={**CDK_CONTEXT, "policy": str(policy_file)}, outdir=str(tmp_path / "cdk.out"))
    stack = build_app(app, code_dir=stub_asset(tmp_path / "asset"), environ={})
    iam.Policy(  # what a careless edit might add
        stack,
        "Careless",
        roles=[stack.vending.role],
        statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])],
    )
    with pytest.raises(RuntimeError, match=r"ValidationFailed(.|\n)*AwsSolutions-IAM5\[Resource::\*\]"):
        app.synth()
