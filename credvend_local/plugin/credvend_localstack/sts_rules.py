"""Make LocalStack's STS refuse AssumeRole calls the way AWS does.

Community LocalStack issues credentials for any AssumeRole: no trust policy, no
MaxSessionDuration, no one-hour cap on role chaining. credvend exists because AWS refuses
those calls, so its tests need a LocalStack that refuses them too.

How: an on_infra_start hook appends a handler to LocalStack's
`serve_custom_service_request_handlers` chain, which runs after the request is parsed and
before the STS provider. The handler translates the request into the pure
`iam_policy_eval` model, asks `decide_assume_role`, and raises an ordinary STS error if
AWS would. It also fills in an inherited SourceIdentity so the provider stores it on the
new session (LocalStack keeps `source_identity` on its credentials but never inherits it).

Every external AssumeRole also lands in a journal (journal.py) with its final outcome — a
response handler records it, so refusals by the provider itself count too — which tests
read at GET /_credvend/sts/assume-role-journal[?after=SEQ] and clear with DELETE. It shows
what the vending function sends to STS, which the API's answer alone cannot.

AssumeRoleWithWebIdentity is judged by web_identity.py (installed by the same hook, same
journal).

Switch: CREDVEND_STS_RULES=0 (or false/off/no) leaves LocalStack's STS untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from localstack.runtime import hooks

from .iam_policy_eval import (
    DEFAULT_DURATION,
    AssumeRoleRequest,
    Caller,
    TargetRole,
    decide_assume_role,
    effective_source_identity,
)
from .journal import AssumeRoleJournal, after_param

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext
    from localstack.aws.chain import HandlerChain
    from localstack.http import Response

LOG = logging.getLogger(__name__)

SWITCH = "CREDVEND_STS_RULES"
JOURNAL_PATH = "/_credvend/sts/assume-role-journal"
JOURNAL = AssumeRoleJournal()


def rules_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """On unless explicitly switched off: a test run should never silently lose them."""
    return environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


@hooks.on_infra_start()
def credvend_sts_rules() -> None:
    if not rules_enabled():
        LOG.warning("credvend STS rules are OFF (%s=%s)", SWITCH, os.environ.get(SWITCH))
        return
    from localstack.aws.handlers import run_custom_response_handlers, serve_custom_service_request_handlers
    from localstack.services.edge import ROUTER

    serve_custom_service_request_handlers.append(enforce_assume_role_rules)
    run_custom_response_handlers.append(journal_assume_role)
    # the edge router is consulted before any AWS service parsing, so this path never
    # reaches a service; LocalStack's own providers add their developer routes the same way
    ROUTER.add(JOURNAL_PATH, serve_journal, methods=["GET", "DELETE"])
    LOG.info("credvend STS rules on: trust policies, MaxSessionDuration, role chaining; journal at %s", JOURNAL_PATH)
    # AssumeRoleWithWebIdentity: judged as AWS judges it (web_identity.py), same journal
    from .web_identity import install as judge_web_identity

    judge_web_identity()


def enforce_assume_role_rules(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    if not _is_external_assume_role(context):
        return
    # LocalStack modules are imported lazily throughout: plux imports this module with all
    # hooks, before LocalStack has configured itself and loaded its services
    from localstack.aws.api import CommonServiceException

    request = context.service_request
    role_arn = request["RoleArn"]
    if _role_name_and_account(role_arn) is None:
        return  # malformed ARN: the provider's own validation answers it
    assume = AssumeRoleRequest(
        caller=identify_caller(context),
        role_arn=role_arn,
        role_session_name=request["RoleSessionName"],
        duration_seconds=request.get("DurationSeconds"),
        external_id=request.get("ExternalId"),
        source_identity=request.get("SourceIdentity"),
        tags={tag["Key"]: tag["Value"] for tag in request.get("Tags") or []},
    )
    # for journal_assume_role, which records it once the outcome is known
    context.credvend_assume_role_journal = {
        "caller_arn": assume.caller.arn,
        "role_arn": role_arn,
        "role_session_name": assume.role_session_name,
        "duration_seconds": assume.duration_seconds,
        "source_identity": effective_source_identity(assume),
        "request_id": context.request_id,  # what the answer carries as its RequestId
    }
    refusal = decide_assume_role(assume, lookup_role(role_arn))
    if refusal is not None:
        LOG.info("credvend STS rules refuse AssumeRole of %s: %s", role_arn, refusal.message)
        raise CommonServiceException(refusal.code, refusal.message, refusal.status, sender_fault=True)
    # the provider stores what it is given: hand it the inherited source identity so the
    # new session carries it (and the response shows it), as AWS does
    if (source_identity := effective_source_identity(assume)) is not None:
        request["SourceIdentity"] = source_identity


def journal_assume_role(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    """Record the final outcome of an AssumeRole the rules saw: whoever refused it (these
    rules or the provider), the exception handler has set `service_exception` by now."""
    pending = context.get("credvend_assume_role_journal")
    if pending is None:
        return
    error = context.service_exception
    if error is not None:
        JOURNAL.record(**pending, error_code=error.code, error_message=error.message)
    elif response.status_code >= 400:
        JOURNAL.record(**pending, error_code=f"HTTP{response.status_code}")
    else:
        issued = (context.service_response or {}).get("Credentials") or {}
        JOURNAL.record(**pending, access_key_id=issued.get("AccessKeyId"))


def serve_journal(request: Any, **_: Any) -> Any:
    """GET: the entries after `?after=SEQ` (all by default). DELETE: forget them."""
    from localstack.http import Response

    if request.method == "DELETE":
        JOURNAL.reset()
        return Response(status=204)
    try:
        after = after_param(request.args)
    except ValueError as exc:
        return Response.for_json({"error": str(exc)}, status=400)
    return JOURNAL.snapshot(after)


def _is_external_assume_role(context: RequestContext) -> bool:
    # LocalStack's own internals (e.g. the Lambda service assuming a function's execution
    # role for 12 hours) are not callers AWS would check
    return (
        context.service is not None
        and context.service.service_name == "sts"
        and context.operation is not None
        and context.operation.name == "AssumeRole"
        and not context.is_internal_call
        and context.service_request is not None
    )


def _role_name_and_account(role_arn: str) -> tuple[str, str] | None:
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    return parts[5].rsplit("/", 1)[-1], parts[4]


def lookup_role(role_arn: str) -> TargetRole | None:
    from localstack.services.iam.models import iam_stores

    name_and_account = _role_name_and_account(role_arn)
    if name_and_account is None:
        return None
    name, account = name_and_account
    # ROLES is cross-region: any region's store sees the same roles
    entity = iam_stores[account]["us-east-1"].ROLES.get(name)
    if entity is None:
        return None
    role: Mapping[str, Any] = entity.role
    return TargetRole(
        arn=role["Arn"],
        # URL-quoted after CreateRole, plain after UpdateAssumeRolePolicy: parse_policy
        # accepts both
        trust_policy=role.get("AssumeRolePolicyDocument") or "{}",
        max_session_duration=int(role.get("MaxSessionDuration") or DEFAULT_DURATION),
    )


def identify_caller(context: RequestContext) -> Caller:
    """Who signed the request, from its access key: an STS session LocalStack issued, an
    IAM user's key, or else the account root (LocalStack's default test/test keys)."""
    from localstack.services.iam.models import iam_stores
    from localstack.services.sts.models import sts_stores
    from localstack.utils.aws.request_context import extract_access_key_id_from_auth_header

    account = context.account_id
    access_key_id = extract_access_key_id_from_auth_header(context.request.headers) or ""
    # the credentials map is shared across accounts and regions
    session = sts_stores[account][context.region].credentials.get(access_key_id)
    if session is not None:
        return _session_caller(session.arn, session.account_id, session.source_identity)
    iam = iam_stores[account]["us-east-1"]
    user_name = iam.ACCESS_KEY_INDEX.get(access_key_id)
    if user_name and (user := iam.USERS.get(user_name)):
        arn = user.user["Arn"]
        return Caller(arn=arn, account=account, principal_type="User", principal_arn=arn)
    root = f"arn:{context.partition}:iam::{account}:root"
    return Caller(arn=root, account=account, principal_type="Account", principal_arn=root)


def _session_caller(arn: str, account: str, source_identity: str | None) -> Caller:
    partition, resource = arn.split(":")[1], arn.split(":", 5)[-1]
    kind = resource.split("/", 1)[0]
    if kind == "assumed-role":
        role_name = resource.split("/")[1]
        return Caller(
            arn=arn,
            account=account,
            principal_type="AssumedRole",
            principal_arn=_role_arn(account, role_name, partition),
            source_identity=source_identity,
        )
    if kind == "federated-user":
        return Caller(arn=arn, account=account, principal_type="FederatedUser", principal_arn=arn)
    # GetSessionToken sessions: LocalStack issues them as the account root
    return Caller(arn=arn, account=account, principal_type="Account", principal_arn=arn)


def _role_arn(account: str, role_name: str, partition: str) -> str:
    """aws:PrincipalArn of a role session is its role's ARN, path included."""
    from localstack.services.iam.models import iam_stores

    entity = iam_stores[account]["us-east-1"].ROLES.get(role_name)
    if entity is not None:
        return entity.role["Arn"]
    return f"arn:{partition}:iam::{account}:role/{role_name}"
