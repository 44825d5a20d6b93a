"""API Gateway (REST API) IAM authorization for LocalStack, as AWS does it.

Community LocalStack lets any request through an ``AWS_IAM`` method and leaves
``requestContext.identity`` empty. This module adds a handler to the REST API gateway's
``preprocess_request`` chain (it runs after routing, before the integration) that:

- requires a SigV4 ``Authorization`` header for service ``execute-api``, signed with
  credentials LocalStack issued: IAM user access keys, or STS session credentials together
  with their ``X-Amz-Security-Token``;
- recomputes the signature with botocore over exactly the client's SignedHeaders and
  X-Amz-Date, and compares in constant time;
- answers with the gateway errors AWS uses (all 403), or fills
  ``context.context_variables["identity"]`` in place, which is what the Lambda proxy event's
  ``requestContext.identity`` is built from.

Not covered: SigV4 in the query string (pre-signed execute-api URLs), SigV4a, resource
policies, and IAM policy evaluation of ``execute-api:Invoke`` (LocalStack has no IAM engine).
"""

import hmac
import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from localstack.aws.accounts import get_account_id_from_access_key_id
from localstack.runtime.hooks import on_infra_start
from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
    ExpiredTokenError,
    InvalidSignatureError,
    MissingAuthTokenError,
)
from localstack.services.iam.models import iam_stores
from localstack.services.iam.utils import get_access_key_by_id
from localstack.services.sts.models import sts_stores

LOG = logging.getLogger(__name__)

SERVICE = "execute-api"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=5)
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"


class InvalidSecurityTokenError(InvalidSignatureError):
    # AWS answers an unknown key or a wrong session token with 403 UnrecognizedClientException.
    code = "UnrecognizedClientException"


class IncompleteSignatureError(InvalidSignatureError):
    code = "IncompleteSignatureException"


# --- parsing the Authorization header ----------------------------------------------------


class ParsedAuthorization:
    """The parts of ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""

    def __init__(self, header: str):
        algorithm, _, rest = header.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise IncompleteSignatureError(
                f"Authorization header requires 'Credential' parameter. Authorization header requires "
                f"'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
                f'Authorization="{header}"'
            )
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
        if missing:
            raise IncompleteSignatureError(
                " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            )
        scope = fields["Credential"].split("/")
        if len(scope) != 5:
            raise IncompleteSignatureError(
                f"Credential should be scoped to a valid region. Credential={fields['Credential']}"
            )
        self.access_key_id, self.date, self.region, self.service, self.terminator = scope
        self.signed_headers = fields["SignedHeaders"].split(";")
        self.signature = fields["Signature"]


def parse_amz_date(value: str | None) -> datetime:
    if not value:
        raise IncompleteSignatureError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise IncompleteSignatureError(f"Date must be in ISO-8601 'basic format'. Got '{value}'.") from None


def check_clock_skew(amz_date: str, signed_at: datetime) -> None:
    now = datetime.now(UTC)
    fmt = lambda moment: moment.strftime(AMZ_DATE_FORMAT)  # noqa: E731
    if signed_at < now - MAX_CLOCK_SKEW:
        raise InvalidSignatureError(
            f"Signature expired: {amz_date} is now earlier than {fmt(now - MAX_CLOCK_SKEW)} ({fmt(now)} - 5 min.)"
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = fmt(now + MAX_CLOCK_SKEW)
        raise InvalidSignatureError(
            f"Signature not yet current: {amz_date} is still later than {latest} ({fmt(now)} + 5 min.)"
        )


def check_scope(auth: ParsedAuthorization, amz_date: str, api_region: str) -> None:
    if auth.date != amz_date[:8] or auth.terminator != "aws4_request":
        raise InvalidSignatureError(SIGNATURE_MISMATCH)
    if auth.region != api_region:
        raise InvalidSignatureError("Credential should be scoped to a valid region. ")
    if auth.service != SERVICE:
        raise InvalidSignatureError(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if "host" not in auth.signed_headers:
        raise InvalidSignatureError("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")


# --- who signed: the identity behind an access key ---------------------------------------


class Caller:
    """The identity API Gateway reports for verified credentials."""

    def __init__(self, access_key_id: str, secret: str, session_token: str | None, identity: dict):
        self.access_key_id = access_key_id
        self.secret = secret
        self.session_token = session_token
        self.identity = identity


def find_caller(access_key_id: str, region: str, deployment_account: str) -> Caller:
    """Look the key up among the IAM user keys and STS sessions LocalStack issued."""
    for account in dict.fromkeys([get_account_id_from_access_key_id(access_key_id), deployment_account]):
        key = get_access_key_by_id(account, region, access_key_id)
        if key is None:
            continue
        if key.session_token is not None:
            return session_caller(account, region, key)
        return user_caller(account, region, key)
    raise InvalidSecurityTokenError(INVALID_TOKEN)


def session_caller(account: str, region: str, key) -> Caller:
    session = sts_stores[account][region].credentials[key.access_key_id]
    if session.is_expired():
        raise ExpiredTokenError(EXPIRED_TOKEN)
    # session.user_id is "AROA...:session-name" for a role session, as AWS reports it.
    identity = _identity(session.arn, session.user_id, session.account_id, key.access_key_id)
    return Caller(key.access_key_id, key.secret_access_key, key.session_token, identity)


def user_caller(account: str, region: str, key) -> Caller:
    store = iam_stores[account][region]
    user = store.USERS[store.ACCESS_KEY_INDEX[key.access_key_id]]
    if user.access_keys[key.access_key_id].access_key.get("Status", "Active") != "Active":
        raise InvalidSecurityTokenError(INVALID_TOKEN)
    identity = _identity(user.user["Arn"], user.user["UserId"], account, key.access_key_id)
    return Caller(key.access_key_id, key.secret_access_key, None, identity)


def _identity(arn: str, principal_id: str, account: str, access_key_id: str) -> dict:
    return {
        "userArn": arn,
        "caller": principal_id,
        "user": principal_id,
        "accountId": account,
        "accessKey": access_key_id,
    }


# --- recomputing the signature -------------------------------------------------------------


class ExactHeadersSigV4(SigV4Auth):
    """SigV4Auth that signs exactly the headers the client listed, nothing added or dropped."""

    def __init__(self, credentials, region: str, signed_headers: list[str]):
        super().__init__(credentials, SERVICE, region)
        self._names = signed_headers

    def headers_to_sign(self, request):
        selected = HTTPHeaders()
        for name in self._names:
            for value in request.headers.get_all(name) or []:
                selected[name] = value  # HTTPHeaders appends on repeated assignment
        return selected


def rebuild_request(request, body: bytes, signed_headers: list[str]) -> AWSRequest:
    """The request as the client signed it: the raw path and query it sent, its headers."""
    raw_uri = request.environ.get("RAW_URI") or request.full_path
    target = urlsplit(raw_uri)  # RAW_URI may be a full URL when the client used a proxy
    path_and_query = target.path + (f"?{target.query}" if target.query else "")
    aws_request = AWSRequest(method=request.method, url=f"http://{request.host}{path_and_query}", data=body)
    for name in signed_headers:
        for value in request.headers.getlist(name):
            aws_request.headers[name] = value
    return aws_request


def verify_signature(auth: ParsedAuthorization, caller: Caller, aws_request: AWSRequest, amz_date: str) -> None:
    signer = ExactHeadersSigV4(Credentials(caller.access_key_id, caller.secret), auth.region, auth.signed_headers)
    aws_request.context["timestamp"] = amz_date
    canonical_request = signer.canonical_request(aws_request)
    string_to_sign = signer.string_to_sign(aws_request, canonical_request)
    expected = signer.signature(string_to_sign, aws_request)
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise InvalidSignatureError(
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n"
            f"'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
        )


def check_session_token(caller: Caller, token: str | None) -> None:
    # A session key needs its own token; a long-term user key must come without one.
    if (caller.session_token is None) != (token is None):
        raise InvalidSecurityTokenError(INVALID_TOKEN)
    if token is not None and not hmac.compare_digest(token.encode(), caller.session_token.encode()):
        raise InvalidSecurityTokenError(INVALID_TOKEN)


def authenticate(context) -> dict:
    """Verify the request's SigV4 signature; return the caller's identity or raise a 403."""
    request = context.request
    header = request.headers.get("Authorization")
    if not header:
        raise MissingAuthTokenError("Missing Authentication Token")
    auth = ParsedAuthorization(header)
    amz_date = request.headers.get("X-Amz-Date")
    signed_at = parse_amz_date(amz_date)
    check_scope(auth, amz_date, context.region)
    check_clock_skew(amz_date, signed_at)
    caller = find_caller(auth.access_key_id, context.region, context.account_id)
    check_session_token(caller, request.headers.get("X-Amz-Security-Token"))
    body = context.invocation_request.get("body") or b""
    verify_signature(auth, caller, rebuild_request(request, body, auth.signed_headers), amz_date)
    return caller.identity


class IamAuthorizationHandler:
    """preprocess_request handler: enforce AWS_IAM authorization on the methods that ask for it."""

    def __call__(self, chain, context, response):
        method = context.resource_method or {}
        if method.get("authorizationType") != "AWS_IAM":
            return
        identity = authenticate(context)
        # Edit in place: the Lambda proxy event's requestContext.identity is built from it.
        context.context_variables["identity"].update(identity)
        LOG.debug("execute-api IAM caller %s", identity["userArn"])


_HANDLER = IamAuthorizationHandler()


# Test control: STS sessions last at least 15 minutes, so a test cannot wait for one to
# expire. POST {"AccessKeyId": ...} here ends that session now, as time would.
EXPIRE_SESSION_PATH = "/_credvend/test/expire-session"


def expire_session(request, **_):
    from localstack.http import Response

    key_id = (request.get_json(silent=True) or {}).get("AccessKeyId")
    # The sessions map is shared by every account and region (a cross-account attribute).
    sessions = sts_stores[get_account_id_from_access_key_id("test")]["us-east-1"].credentials
    if not isinstance(key_id, str) or key_id not in sessions:
        return Response.for_json({"error": "no such session"}, status=404)
    sessions[key_id].expiration = datetime.now(UTC) - timedelta(seconds=1)
    return Response(status=204)


@on_infra_start()
def credvend_register_iam_authorization():
    from localstack.services.apigateway.next_gen.execute_api import handlers
    from localstack.services.edge import ROUTER

    if _HANDLER not in handlers.preprocess_request.handlers:
        handlers.preprocess_request.append(_HANDLER)
    ROUTER.add(EXPIRE_SESSION_PATH, expire_session, methods=["POST"])
