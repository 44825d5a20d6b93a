"""LocalStack hook: API Gateway evaluates a REST API's resource policy before the integration.

Community LocalStack stores a REST API's resource policy and never reads it. This adds a
handler to the REST API gateway's `preprocess_request` chain, after the SigV4 check
(iam_auth.py, which fills `context_variables["identity"]`), that asks the pure rules in
apigw_resource_policy.py and raises API Gateway's ACCESS_DENIED (403,
`{"Message":"User: ... is not authorized to perform: execute-api:Invoke on resource: ..."}`),
so the integration never runs and gateway responses configured for ACCESS_DENIED apply.

It reads the policy of the deployment being invoked: as on AWS, a changed policy takes
effect at the next deployment. Methods with AWS_IAM or no authorization are evaluated;
custom and Cognito authorizers are not (they are not emulated by credvend's plugin).

Settings (LocalStack's environment): CREDVEND_ORGANIZATIONS=`o-abc=111111111111,222222222222;o-def=...`
gives callers' accounts an organization (aws:PrincipalOrgID), which LocalStack does not know;
CREDVEND_APIGW_RESOURCE_POLICIES=0 turns the evaluation off.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from localstack.runtime import hooks
from localstack.services.apigateway.next_gen.execute_api.gateway_response import AccessDeniedError

from .apigw_resource_policy import InvokeRequest, authorize_invoke, organization_of
from .iam_policy_eval import Caller

LOG = logging.getLogger(__name__)

SWITCH = "CREDVEND_APIGW_RESOURCE_POLICIES"
ORGANIZATIONS_SETTING = "CREDVEND_ORGANIZATIONS"
EVALUATED_AUTHORIZATION = ("AWS_IAM", "NONE")


class ResourcePolicyDeniedError(AccessDeniedError):
    """ACCESS_DENIED gateway response; LocalStack renders its body as {"Message": ...}."""


def api_policy(deployment: Any) -> str | None:
    """The deployed API's policy document. LocalStack keeps it JSON-escaped, as AWS's
    GetRestApi returns it (`{\\"Version\\":...}`)."""
    stored = (deployment.rest_api.rest_api or {}).get("policy") if deployment is not None else None
    if not stored:
        return None
    text = str(stored)
    if text.startswith('{"'):
        return text
    unescaped: str = json.loads(f'"{text}"')
    return unescaped


def caller_from_identity(identity: dict[str, Any]) -> Caller:
    """The verified SigV4 caller, in the IAM evaluator's terms (aws:PrincipalArn of a role
    session is its role's ARN, path included)."""
    arn, account = str(identity["userArn"]), str(identity["accountId"])
    resource = arn.split(":", 5)[-1]
    kind = resource.split("/", 1)[0]
    if kind == "assumed-role":
        role_name = resource.split("/")[1]
        return Caller(
            arn=arn, account=account, principal_type="AssumedRole", principal_arn=_role_arn(account, role_name, arn)
        )
    if kind == "user":
        return Caller(arn=arn, account=account, principal_type="User", principal_arn=arn)
    if kind == "federated-user":
        return Caller(arn=arn, account=account, principal_type="FederatedUser", principal_arn=arn)
    return Caller(arn=arn, account=account, principal_type="Account", principal_arn=arn)


def _role_arn(account: str, role_name: str, session_arn: str) -> str:
    from localstack.services.iam.models import iam_stores

    entity = iam_stores[account]["us-east-1"].ROLES.get(role_name)
    if entity is not None:
        return str(entity.role["Arn"])
    partition = session_arn.split(":")[1]
    return f"arn:{partition}:iam::{account}:role/{role_name}"


class ResourcePolicyHandler:
    """preprocess_request handler: API Gateway's resource-policy check."""

    def __init__(self, organizations: str = "") -> None:
        self.organizations = organizations

    def __call__(self, chain: Any, context: Any, response: Any) -> None:
        method = context.resource_method or {}
        authorization = method.get("authorizationType")
        if authorization not in EVALUATED_AUTHORIZATION:
            return
        identity = context.context_variables["identity"]
        caller = None
        if authorization == "AWS_IAM":
            if not identity.get("userArn"):
                # the SigV4 handler must have run and filled the identity; never guess
                raise ResourcePolicyDeniedError("Missing verified identity")
            caller = caller_from_identity(identity)
        request = InvokeRequest(
            api_id=context.api_id,
            stage=context.stage,
            http_method=context.invocation_request["http_method"],
            path=context.invocation_request["path"],
            region=context.region,
            api_account=context.account_id,
            caller=caller,
            source_ip=context.request.remote_addr or identity.get("sourceIp"),
            principal_org_id=organization_of(caller.account, self.organizations) if caller else None,
            user_id=identity.get("caller") if caller else None,
        )
        refusal = authorize_invoke(api_policy(context.deployment), request)
        if refusal is not None:
            LOG.info("credvend: API resource policy refuses %s", refusal.message)
            raise ResourcePolicyDeniedError(refusal.message)


def _register(handlers: list[Any], handler: ResourcePolicyHandler) -> None:
    """Right after the SigV4 handler, which must fill the identity first."""
    from .iam_auth import _HANDLER as sigv4_handler

    if any(isinstance(h, ResourcePolicyHandler) for h in handlers):
        return
    if sigv4_handler in handlers:
        handlers.insert(handlers.index(sigv4_handler) + 1, handler)
    else:
        handlers.append(handler)


# A lower priority than iam_auth's hook (0): it runs later, so the SigV4 handler is in
# the chain already and this one goes after it.
@hooks.on_infra_start(priority=-10)
def credvend_apigw_resource_policies() -> None:
    if os.environ.get(SWITCH, "1").strip().lower() in {"0", "false", "off", "no"}:
        LOG.warning("credvend API Gateway resource policies are OFF (%s)", SWITCH)
        return
    from localstack.services.apigateway.next_gen.execute_api import handlers

    _register(handlers.preprocess_request.handlers, ResourcePolicyHandler(os.environ.get(ORGANIZATIONS_SETTING, "")))
    LOG.info("credvend API Gateway resource policies on")
