"""cdk-nag acknowledgements, always on the construct they concern.

cdk-nag 3 runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins``) and
reads acknowledgements made with ``Validations.of(construct).acknowledge``; a finding is
named ``Rule[finding]`` (cdk-nag 2's ``applies_to``). Nothing here acknowledges a rule for
a whole stack.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, *, reason: str, finding: str | None = None) -> None:
    """Acknowledge ``rule`` (or one ``finding`` of it) on ``construct``, with a one-sentence reason."""
    rule_id = rule if finding is None else f"{rule}[{finding}]"
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))
