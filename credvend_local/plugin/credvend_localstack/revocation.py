"""Make LocalStack honour explicit Deny statements in a role's inline policies, for every
request signed with a session of that role, for every service: what credvend's per-caller
revocation (``credvend revoke``, CONTRACT §11) relies on.

How: an on_infra_start hook adds
- a response handler that notes when each session was issued (``aws:TokenIssueTime``):
  LocalStack's STS store keeps a session's expiry but not its issue time;
- a request handler on ``serve_custom_service_request_handlers`` (after the request is
  parsed, before any provider: the same chain for S3, STS, IAM, SQS, ...) that finds the
  signing session from the access key id (``sts_stores``), its role's inline policies
  (``iam_stores``) and asks ``identity_deny.explicit_deny`` with ``aws:SourceIdentity``,
  ``aws:TokenIssueTime`` and ``aws:PrincipalArn`` in the context. A denial is AWS's error:
  ``AccessDenied`` 403 (``AccessDeniedException`` for JSON protocols), serialized in the
  service's own protocol (S3's XML error, STS's query error...).

Requests signed with anything else (IAM users, the root test keys) and LocalStack's own
internal calls are not looked at. Switch: CREDVEND_REVOCATION=0 turns it off.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from localstack.runtime import hooks

from .identity_deny import Session, access_denied_code, explicit_deny

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext
    from localstack.aws.chain import HandlerChain
    from localstack.http import Response

LOG = logging.getLogger(__name__)

SWITCH = "CREDVEND_REVOCATION"
ISSUING_OPERATIONS = frozenset(
    {"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetSessionToken", "GetFederationToken"}
)
MAX_TRACKED_SESSIONS = 200_000


class IssueTimes:
    """access key id -> when the session was issued; bounded, oldest forgotten first."""

    def __init__(self, max_entries: int = MAX_TRACKED_SESSIONS) -> None:
        self._times: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def record(self, access_key_id: str, moment: datetime) -> None:
        with self._lock:
            self._times[access_key_id] = moment
            while len(self._times) > self._max:
                self._times.popitem(last=False)

    def get(self, access_key_id: str) -> datetime | None:
        with self._lock:
            return self._times.get(access_key_id)


ISSUED = IssueTimes()


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(SWITCH, "1").strip().lower() not in {"0", "false", "off", "no"}


@hooks.on_infra_start()
def credvend_revocation() -> None:
    if not enabled():
        LOG.warning("credvend revocation enforcement is OFF (%s=%s)", SWITCH, os.environ.get(SWITCH))
        return
    from localstack.aws.handlers import run_custom_response_handlers, serve_custom_service_request_handlers

    run_custom_response_handlers.append(note_issue_time)
    serve_custom_service_request_handlers.append(deny_revoked_sessions)
    LOG.info("credvend revocation on: explicit Deny in a role's inline policies applies to its sessions")


def note_issue_time(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    if context.service is None or context.service.service_name != "sts" or context.operation is None:
        return
    if context.operation.name not in ISSUING_OPERATIONS or context.service_exception is not None:
        return
    answer = context.service_response
    credentials = answer.get("Credentials") if isinstance(answer, Mapping) else None
    access_key_id = credentials.get("AccessKeyId") if isinstance(credentials, Mapping) else None
    if isinstance(access_key_id, str):
        ISSUED.record(access_key_id, datetime.now(UTC))


def _access_key_id(context: RequestContext) -> str | None:
    from localstack.utils.aws.request_context import extract_access_key_id_from_auth_header

    found = extract_access_key_id_from_auth_header(context.request.headers)
    if found:
        return str(found)
    # a presigned URL (S3): X-Amz-Credential=AKID/date/region/service/aws4_request
    credential = parse_qs(context.request.query_string.decode("latin-1")).get("X-Amz-Credential")
    return credential[0].split("/", 1)[0] if credential else None


def signing_session(context: RequestContext) -> tuple[Session, Mapping[str, Any]] | None:
    """The session that signed the request and its role's inline policies, or None."""
    from localstack.services.iam.models import iam_stores
    from localstack.services.sts.models import sts_stores

    access_key_id = _access_key_id(context)
    if not access_key_id:
        return None
    # the credentials map is shared across accounts and regions
    creds = sts_stores[context.account_id or "000000000000"]["us-east-1"].credentials.get(access_key_id)
    if creds is None:
        return None
    resource = creds.arn.split(":", 5)[-1].split("/")
    if resource[0] != "assumed-role" or len(resource) < 3:
        return None
    entity = iam_stores[creds.account_id]["us-east-1"].ROLES.get(resource[1])
    if entity is None or not entity.inline_policies:
        return None
    session = Session(
        arn=creds.arn,
        account=creds.account_id,
        role_arn=entity.role["Arn"],
        user_id=creds.user_id,
        source_identity=creds.source_identity,
        issued_at=ISSUED.get(access_key_id),
    )
    return session, dict(entity.inline_policies)


def deny_revoked_sessions(chain: HandlerChain, context: RequestContext, response: Response) -> None:
    if context.is_internal_call or context.service is None or context.operation is None:
        return
    found = signing_session(context)
    if found is None:
        return
    session, policies = found
    prefix = context.service.metadata.get("signingName") or context.service.service_name
    action = f"{prefix}:{context.operation.name}"
    denial = explicit_deny(
        policies,
        action,
        session,
        on_unreadable=lambda name, why: LOG.warning("credvend revocation skips policy %s: %s", name, why),
    )
    if denial is None:
        return
    from localstack.aws.api import CommonServiceException

    LOG.info("credvend revocation denies %s to %s (policy %s, %s)", action, session.arn, denial.policy_name, denial.sid)
    code = access_denied_code(context.service.protocol)
    raise CommonServiceException(code, denial.message, 403, sender_fault=True)
