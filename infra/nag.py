"""cdk-nag acknowledgements, always on the construct they concern.

cdk-nag 3 runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins``) and
reads acknowledgements made with ``Validations.of(construct).acknowledge``; a finding is
named ``Rule[finding]`` (cdk-nag 2's ``applies_to``). Nothing here acknowledges a rule for
a whole stack.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, *, reason: str, finding: str | None = None) -> None:
    """Acknowledge ``rule`` (or one ``finding`` of it) on ``construct``, with a one-sentence reason."""
    rule_id = rule if finding is None else f"{rule}[{finding}]"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledge_checkov(construct: IConstruct, check: str, *, reason: str) -> None:
    """Record in the template that checkov's ``check`` does not apply to ``construct``, and why.

    checkov reads ``Metadata.checkov.skip`` on a CloudFormation resource; the reason travels
    with the template, so a reviewer running checkov on a fresh synth sees it.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"].append({"id": check, "comment": reason})
    resource.add_metadata("checkov", metadata)
