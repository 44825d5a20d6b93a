"""Update a CloudFormation ``AWS::IAM::Role`` in place, as AWS does, instead of deleting and
recreating it (which drops every inline policy the template does not own).

AWS updates a role's trust policy, MaxSessionDuration, description, managed policies,
template-declared inline policies and tags in place, and replaces the role only when a
create-only property changes (RoleName, Path). Inline policies put on the role out of band
(credvend's ``credvend-revocations``, CONTRACT §11) are not the template's, so a later
``cdk deploy`` keeps them. LocalStack 2026.3.0's role provider instead deletes the role and
creates it again on any trust-policy or managed-policy change ("TODO: do a proper update
instead of replacement"), and ignores the other changes: a deploy that changes a role's
trust policy would silently lift every revocation, and a MaxSessionDuration change would
never reach the role.

The plan (which IAM calls an update needs) is pure and unit-tested (role_update_plan.py); this patches
``IAMRoleProvider.update`` to run it. Switch: CREDVEND_CFN_ROLE_UPDATE=0.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from localstack.runtime import hooks

from .role_update_plan import update_plan

LOG = logging.getLogger(__name__)

SWITCH = "CREDVEND_CFN_ROLE_UPDATE"


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


@hooks.on_infra_start()
def credvend_cfn_role_update() -> None:
    if not enabled():
        LOG.warning("credvend CloudFormation role updates are LocalStack's own (%s=%s)", SWITCH, os.environ.get(SWITCH))
        return
    from localstack.services.cloudformation.resource_provider import OperationStatus, ProgressEvent
    from localstack.services.iam.resource_providers.aws_iam_role import IAMRoleProvider
    from localstack.utils.patch import patch

    @patch(IAMRoleProvider.update)
    def update(fn: Any, self: Any, request: Any) -> Any:
        previous, desired = request.previous_state, request.desired_state
        plan = update_plan(previous, desired)
        if plan is None:
            return fn(self, request)  # a replacement: LocalStack's delete-and-create is right
        iam = request.aws_client_factory.iam
        for operation, parameters in plan:
            getattr(iam, operation)(**parameters)
        model = {
            **desired,
            "RoleName": previous["RoleName"],
            "Arn": previous.get("Arn"),
            "RoleId": previous.get("RoleId"),
        }
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    LOG.info("credvend CloudFormation role updates in place (out-of-band inline policies survive deploys)")
