"""LocalStack hook: refuse requests whose documents break AWS's quotas.

IAM and API Gateway policies (iam_quotas.py) and CloudFormation templates (cfn_quotas.py).

A handler in `serve_custom_service_request_handlers` (after parsing, before the provider)
hands the request's documents to the pure rules in iam_quotas.py and raises the service
error AWS would. Internal calls are checked too: CloudFormation's resource providers reach
IAM and API Gateway through them, and a stack must fail there as it fails on AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from localstack.runtime import hooks

from .cfn_quotas import check_template
from .iam_policy_eval import Refusal
from .iam_quotas import (
    Quotas,
    api_policy_from_patch,
    check_api_resource_policy,
    check_managed_policy,
    check_role_inline_policy,
    check_trust_policy,
    quotas_enabled,
    quotas_from_environment,
)

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext
    from localstack.aws.chain import HandlerChain
    from localstack.http import Response

LOG = logging.getLogger(__name__)

_QUOTAS: list[Quotas] = []  # set once at start; a list so the handler sees the hook's value


@hooks.on_infra_start()
def credvend_policy_quotas() -> None:
    if not quotas_enabled():
        LOG.warning("credvend policy quotas are OFF")
        return
    from localstack.aws.handlers import serve_custom_service_request_handlers

    _QUOTAS[:] = [quotas_from_environment()]  # a bad setting fails LocalStack's start, loudly
    serve_custom_service_request_handlers.append(enforce_policy_quotas)
    LOG.info("credvend policy quotas on: %s", _QUOTAS[0])


def enforce_policy_quotas(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    if context.service is None or context.operation is None or context.service_request is None or not _QUOTAS:
        return
    refusal = decide(context.service.service_name, context.operation.name, context.service_request, context)
    if refusal is None:
        return
    from localstack.aws.api import CommonServiceException

    LOG.info("credvend policy quotas refuse %s: %s", context.operation.name, refusal.message)
    raise CommonServiceException(refusal.code, refusal.message, refusal.status, sender_fault=True)


def decide(service: str, operation: str, request: Mapping[str, Any], context: RequestContext) -> Refusal | None:
    quotas = _QUOTAS[0]
    if service == "iam":
        if operation == "CreateRole":
            return check_trust_policy(request["AssumeRolePolicyDocument"], quotas)
        if operation == "UpdateAssumeRolePolicy":
            return check_trust_policy(request["PolicyDocument"], quotas)
        if operation == "PutRolePolicy":
            existing = _inline_policies(context.account_id, request["RoleName"])
            return check_role_inline_policy(
                request["RoleName"], request["PolicyName"], request["PolicyDocument"], existing, quotas
            )
        if operation in ("CreatePolicy", "CreatePolicyVersion"):
            return check_managed_policy(request["PolicyDocument"], quotas)
    if service == "cloudformation" and operation in ("CreateStack", "UpdateStack", "CreateChangeSet"):
        return _check_stack_template(request)
    if service == "apigateway":
        if operation == "CreateRestApi" and request.get("policy"):
            return check_api_resource_policy(request["policy"], quotas)
        if operation == "UpdateRestApi":
            policy = api_policy_from_patch(request.get("patchOperations"))
            if policy:
                return check_api_resource_policy(policy, quotas)
    return None


def _check_stack_template(request: Mapping[str, Any]) -> Refusal | None:
    if not (request.get("TemplateBody") or request.get("TemplateURL")):
        return None  # UsePreviousTemplate
    from localstack.services.cloudformation.api_utils import extract_template_body

    try:
        text = extract_template_body(dict(request))
    except Exception:  # an unreadable template is the provider's error to report
        return None
    return check_template(text, via_url=not request.get("TemplateBody"))


def _inline_policies(account_id: str, role_name: str) -> Mapping[str, str]:
    from localstack.services.iam.models import iam_stores

    # ROLES is cross-region; a missing role is the provider's NoSuchEntity to answer
    entity = iam_stores[account_id]["us-east-1"].ROLES.get(role_name)
    return dict(entity.inline_policies) if entity is not None else {}
