"""Make LocalStack's STS judge AssumeRoleWithWebIdentity the way AWS does.

Community LocalStack grants 12 hours to ANY web identity token: no signature check, no
IAM OIDC provider, no trust policy. credvend's `web_identity` issuance is only worth
testing against an STS that refuses what AWS refuses, so this module replaces the
provider's `assume_role_with_web_identity` with one that:

1. validates the parameters (DurationSeconds 900..43200, RoleSessionName, token length);
2. reads the token as a compact JWS signed with RS256/384/512 or ES256/384/512 (the
   algorithms AWS documents; `none` and HS* never pass);
3. finds the IAM OIDC provider for its `iss` in the role's account and checks `aud`
   against the provider's client ids;
4. verifies the signature with the issuer's JWKS, found through
   `{iss}/.well-known/openid-configuration` -> `jwks_uri` (cached briefly, fetched again
   when the token names a `kid` the cached set lacks);
5. checks `exp` / `nbf` / `iat`;
6. evaluates the role's trust policy with the Federated principal (the provider ARN), the
   `<provider>:aud`/`:sub`/`:amr` keys, `sts:SourceIdentity` from the
   `https://aws.amazon.com/source_identity` claim (then `sts:SetSourceIdentity` must be
   allowed too) and the session tags of the `https://aws.amazon.com/tags` claim (then
   `sts:TagSession`);
7. holds DurationSeconds to the role's MaxSessionDuration. There is no role-chaining cap:
   the call is unsigned, so it never chains.

The issued session carries the source identity and tags (LocalStack's AssumeRole path and
sts_rules.py read them back, so a later chained AssumeRole inherits the source identity),
and the response has AWS's SubjectFromWebIdentityToken / Provider / Audience /
SourceIdentity. Every decision lands in the STS journal (journal.py) without the token.

STS fetches the discovery document and JWKS over the internet; this machine has none. So
fetches go through `resolve_fetch_url`: an AWS execute-api issuer
(`https://{api}.execute-api.{region}.amazonaws.com/{stage}/...`) is answered by the local
gateway's own route for that API (`/_aws/execute-api/{api}/{stage}/...`), a loopback
issuer (tests' own servers) is fetched over plain HTTP, and anything else is the
IDPCommunicationError STS gives when it cannot reach an issuer.

Layout: pure rules first (no LocalStack imports; unit-tested on their own), then the thin
LocalStack adapter at the bottom, whose imports are lazy.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .iam_policy_eval import (
    DEFAULT_DURATION,
    MAX_DURATION,
    MAX_SESSION_MESSAGE,
    MIN_DURATION,
    SET_SOURCE_IDENTITY,
    TAG_SESSION,
    Caller,
    Decision,
    PolicyError,
    Refusal,
    TargetRole,
    evaluate,
    parse_policy,
)

if TYPE_CHECKING:
    from localstack.aws.api import RequestContext

LOG = logging.getLogger(__name__)

ASSUME_ROLE_WITH_WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
OPERATION = "AssumeRoleWithWebIdentity"
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
TAGS_CLAIM = "https://aws.amazon.com/tags"

# ---------------------------------------------------------------------------- AWS's answers
# Seen verbatim from AWS STS (GitHub issues quoting its error responses):
NOT_A_JWT = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
INCORRECT_AUDIENCE = "Incorrect token audience"
NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
# (two spaces after the comma: AWS's text)
KEY_UNAVAILABLE = (
    "Couldn't retrieve verification key from your identity provider,  "
    "please reference AssumeRoleWithWebIdentity documentation for requirements"
)


def no_provider_message(issuer: str) -> str:
    return f"No OpenIDConnect provider found in your account for {issuer}"


def missing_claim_message(claim: str) -> str:
    return f"Missing a required claim: {claim}"


def expired_message(now: int, exp: int) -> str:
    # sic: AWS puts no space before the expiration time
    return f"Token expired: current date/time {now} must be before the expiration date/time{exp}"


# Not seen verbatim (the codes are AWS's, the wording ours):
BAD_SIGNATURE = "Couldn't verify the signature of the web identity token with its issuer's keys"
BAD_TIMESTAMP = "Timestamps in the token must be formatted as either an integer or a long integer"
BAD_SOURCE_IDENTITY = (
    "The source identity claim must be 2 to 64 characters of [A-Za-z0-9_+=,.@-], not starting with aws:"
)
BAD_TAGS = "The session tags claim is malformed or exceeds the session tag limits"


def unsupported_alg_message(alg: object) -> str:
    return (
        f"Unsupported signing algorithm {alg!r}: tokens must be signed with RS256, RS384, RS512, ES256, ES384 or ES512"
    )


def not_yet_valid_message(now: int, nbf: int) -> str:
    return f"Token not yet valid: current date/time {now} must not be before the not-before date/time {nbf}"


def issued_in_future_message(now: int, iat: int) -> str:
    return f"Token issued in the future: issued-at date/time {iat} is after the current date/time {now}"


def invalid_token(message: str) -> Refusal:
    return Refusal("InvalidIdentityToken", message, 400)


def _validation(message: str) -> Refusal:
    return Refusal("ValidationError", message, 400)


IDP_UNREACHABLE = Refusal("IDPCommunicationError", KEY_UNAVAILABLE, 400)
ACCESS_DENIED = Refusal("AccessDenied", NOT_AUTHORIZED, 403)


class Refused(Exception):
    """Internal control flow: a rule refused the request with this STS error."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class IdpUnreachable(Exception):
    """The issuer's discovery document or JWKS could not be fetched or read. The reason is
    for the LocalStack log only; STS answers IDPCommunicationError either way."""


# ---------------------------------------------------------------------------- parameters

MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH = 4, 20000
_SESSION_NAME = re.compile(r"[\w+=,.@-]*")
# how far ahead of STS's clock a token's iat may be; nbf and exp get no leeway
IAT_LEEWAY = 300


@dataclass(frozen=True)
class WebIdentityRequest:
    role_arn: str
    role_session_name: str
    token: str
    duration_seconds: int | None = None


def parameter_refusal(request: WebIdentityRequest) -> Refusal | None:
    """STS's parameter validation, before the token is read."""
    errors: list[str] = []
    name = request.role_session_name
    if not _SESSION_NAME.fullmatch(name):
        errors.append(
            f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )
    if not 2 <= len(name) <= 64:
        bound = "greater than or equal to 2" if len(name) < 2 else "less than or equal to 64"
        errors.append(
            f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: Member must have length {bound}"
        )
    if not MIN_TOKEN_LENGTH <= len(request.token) <= MAX_TOKEN_LENGTH:
        bound = (
            f"greater than or equal to {MIN_TOKEN_LENGTH}"
            if len(request.token) < MIN_TOKEN_LENGTH
            else f"less than or equal to {MAX_TOKEN_LENGTH}"
        )
        # the value itself is never echoed: it is a credential
        errors.append(f"Value at 'webIdentityToken' failed to satisfy constraint: Member must have length {bound}")
    duration = request.duration_seconds
    if duration is not None and not MIN_DURATION <= duration <= MAX_DURATION:
        bound = (
            f"greater than or equal to {MIN_DURATION}"
            if duration < MIN_DURATION
            else f"less than or equal to {MAX_DURATION}"
        )
        errors.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value {bound}"
        )
    if not errors:
        return None
    count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
    return _validation(count + "; ".join(errors))


def parse_role_arn(role_arn: str) -> tuple[str, str, str] | None:
    """(partition, account, role name) of an IAM role ARN, or None."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    if not re.fullmatch(r"\d{12}", parts[4]):
        return None
    return parts[1], parts[4], parts[5].rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------- the token


@dataclass(frozen=True)
class Jws:
    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes
    signature: bytes


def b64url_decode(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2): anything else is not a JWS."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", segment):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def parse_jws(token: str) -> Jws:
    """A compact JWS: three base64url parts, JSON objects for header and claims."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise Refused(invalid_token(NOT_A_JWT))
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise Refused(invalid_token(NOT_A_JWT)) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Refused(invalid_token(NOT_A_JWT))
    return Jws(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


@dataclass(frozen=True)
class _Algorithm:
    kty: str
    hash: Callable[[], hashes.HashAlgorithm]
    curve: str | None = None  # JWK crv for EC
    coordinate_bytes: int = 0  # EC: r and s are each this long in a JWS signature


ALGORITHMS: dict[str, _Algorithm] = {
    "RS256": _Algorithm("RSA", hashes.SHA256),
    "RS384": _Algorithm("RSA", hashes.SHA384),
    "RS512": _Algorithm("RSA", hashes.SHA512),
    "ES256": _Algorithm("EC", hashes.SHA256, "P-256", 32),
    "ES384": _Algorithm("EC", hashes.SHA384, "P-384", 48),
    "ES512": _Algorithm("EC", hashes.SHA512, "P-521", 66),
}
_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


def check_algorithm(jws: Jws) -> str:
    alg = jws.header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise Refused(invalid_token(unsupported_alg_message(alg)))
    # RFC 7515 §4.1.11: a verifier must refuse critical header extensions it does not
    # implement, and this one implements none (e.g. b64=false payloads)
    if "crit" in jws.header:
        raise Refused(invalid_token(NOT_A_JWT))
    return alg


def _b64_int(value: Any) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url integer")
    return int.from_bytes(b64url_decode(value), "big")


def verify_with_jwk(jws: Jws, alg: str, jwk: Mapping[str, Any]) -> bool:
    """Whether `jwk` verifies the JWS's signature under `alg`. A key of another type or
    curve, or one that says it is for another algorithm or use, never verifies."""
    spec = ALGORITHMS[alg]
    if jwk.get("kty") != spec.kty or jwk.get("alg", alg) != alg or jwk.get("use", "sig") != "sig":
        return False
    try:
        if spec.kty == "RSA":
            rsa_key = rsa.RSAPublicNumbers(_b64_int(jwk.get("e")), _b64_int(jwk.get("n"))).public_key()
            rsa_key.verify(jws.signature, jws.signing_input, padding.PKCS1v15(), spec.hash())
            return True
        if jwk.get("crv") != spec.curve or len(jws.signature) != 2 * spec.coordinate_bytes:
            return False
        assert spec.curve is not None
        ec_key = ec.EllipticCurvePublicNumbers(
            _b64_int(jwk.get("x")), _b64_int(jwk.get("y")), _CURVES[spec.curve]()
        ).public_key()
        half = spec.coordinate_bytes
        r, s = int.from_bytes(jws.signature[:half], "big"), int.from_bytes(jws.signature[half:], "big")
        ec_key.verify(encode_dss_signature(r, s), jws.signing_input, ec.ECDSA(spec.hash()))
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def candidate_keys(jwks: Mapping[str, Any], kid: Any) -> list[Mapping[str, Any]]:
    """The JWKS's keys the token may have been signed with: those with its kid, or every
    key when the token names none."""
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return []
    usable = [k for k in keys if isinstance(k, Mapping)]
    return usable if kid is None else [k for k in usable if k.get("kid") == kid]


# ---------------------------------------------------------------------------- fetching keys

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_EXECUTE_API_HOST = re.compile(
    r"(?P<api>[a-z0-9]+)\.execute-api\.(?:[a-z0-9-]+\.)?(?:amazonaws\.com(?:\.cn)?|localhost\.localstack\.cloud)"
)


def resolve_fetch_url(url: str, gateway: str) -> str:
    """Where to fetch an issuer's document from, given LocalStack's own base URL.

    - `https://{api}.execute-api.{region}.amazonaws.com/{stage}/...` (and LocalStack's
      `{api}.execute-api[.{region}].localhost.localstack.cloud[:port]` forms): the local gateway's route for
      that API and stage, `{gateway}/_aws/execute-api/{api}/{stage}/...`;
    - a loopback host (a test's own server): as is, over plain HTTP — IAM registers only
      https:// providers, and no certificate exists for such a server;
    - anything else: IdpUnreachable (there is no internet here).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise IdpUnreachable(f"not an http(s) URL: {url!r}")
    if host in LOOPBACK_HOSTS:
        return urlunsplit(("http", parts.netloc, parts.path, parts.query, ""))
    match = _EXECUTE_API_HOST.fullmatch(host)
    if match and parts.scheme == "https":
        stage_and_path = parts.path.lstrip("/")
        if not stage_and_path:
            raise IdpUnreachable(f"execute-api URL without a stage: {url!r}")
        query = f"?{parts.query}" if parts.query else ""
        return f"{gateway.rstrip('/')}/_aws/execute-api/{match['api']}/{stage_and_path}{query}"
    raise IdpUnreachable(f"{host} is not reachable from LocalStack here (no internet)")


MAX_DOCUMENT_BYTES = 1 << 20
# AWS gives an issuer about 5 s; here the issuer may be a function cold-starting on a busy
# test machine, and a spurious IDPCommunicationError would fail a test for nothing
FETCH_TIMEOUT = 10.0


def fetch_json(url: str, timeout: float = FETCH_TIMEOUT) -> Any:
    """GET a JSON document, as STS does: 200 or nothing, bounded in size and time."""
    # no proxies: every URL that gets here is this machine's own
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (http(s) only, see resolve_fetch_url)
    try:
        with opener.open(request, timeout=timeout) as response:
            if response.status != 200:
                raise IdpUnreachable(f"{url} answered {response.status}")
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise IdpUnreachable(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise IdpUnreachable(f"{url} unreachable: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise IdpUnreachable(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise IdpUnreachable(f"{url} did not send JSON") from None


def discovery_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


class JwksCache:
    """The issuers' key sets, fetched through discovery and kept for `ttl` seconds.

    `keys(issuer, refresh=True)` skips the cache: the caller asks for that when a token
    names a kid the cached set lacks (the issuer may have rotated its key)."""

    def __init__(
        self,
        fetch: Callable[[str], Any],
        resolve: Callable[[str], str],
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self._resolve, self._ttl, self._clock = fetch, resolve, ttl, clock
        self._cache: dict[str, tuple[float, Mapping[str, Any]]] = {}
        self._lock = threading.Lock()

    def keys(self, issuer: str, refresh: bool = False) -> Mapping[str, Any]:
        with self._lock:
            cached = self._cache.get(issuer)
        if cached is not None and not refresh and self._clock() - cached[0] < self._ttl:
            return cached[1]
        jwks = self._download(issuer)
        with self._lock:
            self._cache[issuer] = (self._clock(), jwks)
        return jwks

    def _download(self, issuer: str) -> Mapping[str, Any]:
        discovery = self._fetch(self._resolve(discovery_url(issuer)))
        jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(jwks_uri, str):
            raise IdpUnreachable(f"the discovery document of {issuer} has no jwks_uri")
        jwks = self._fetch(self._resolve(jwks_uri))
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise IdpUnreachable(f"{jwks_uri} is not a JWK set")
        return jwks

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


KeySource = Callable[[str, bool], Mapping[str, Any]]  # (issuer, refresh) -> JWKS


def verify_signature(jws: Jws, alg: str, issuer: str, keys: KeySource) -> None:
    """Refused unless a key of the issuer's JWKS verifies the token. An unknown kid makes
    one more fetch, bypassing the cache, before the token is refused."""
    kid = jws.header.get("kid")
    try:
        jwks = keys(issuer, False)
        candidates = candidate_keys(jwks, kid)
        if not candidates and kid is not None:
            candidates = candidate_keys(keys(issuer, True), kid)
    except IdpUnreachable as exc:
        LOG.info("credvend STS web identity: keys of %s unavailable: %s", issuer, exc)
        raise Refused(IDP_UNREACHABLE) from None
    if not any(verify_with_jwk(jws, alg, jwk) for jwk in candidates):
        raise Refused(invalid_token(BAD_SIGNATURE))


# ---------------------------------------------------------------------------- claims


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def required_string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None or value == "" or value == []:
        raise Refused(invalid_token(missing_claim_message(name)))
    if not isinstance(value, str):
        raise Refused(invalid_token(NOT_A_JWT))
    return value


def audiences(claims: Mapping[str, Any]) -> list[str]:
    value = claims.get("aud")
    if value is None or value == "" or value == []:
        raise Refused(invalid_token(missing_claim_message("aud")))
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise Refused(invalid_token(NOT_A_JWT))
    return values


def check_times(claims: Mapping[str, Any], now: int) -> None:
    """exp is required, and like nbf and iat an integer (AWS: "Timestamps in the token must
    be formatted as either an integer or a long integer")."""
    if "exp" not in claims:
        raise Refused(invalid_token(missing_claim_message("exp")))
    for name in ("exp", "nbf", "iat"):
        if name in claims and not _is_int(claims[name]):
            raise Refused(invalid_token(BAD_TIMESTAMP))
    exp = int(claims["exp"])
    if now >= exp:
        raise Refused(Refusal("ExpiredTokenException", expired_message(now, exp), 400))
    if "nbf" in claims and now < int(claims["nbf"]):
        raise Refused(invalid_token(not_yet_valid_message(now, int(claims["nbf"]))))
    if "iat" in claims and int(claims["iat"]) > now + IAT_LEEWAY:
        raise Refused(invalid_token(issued_in_future_message(now, int(claims["iat"]))))


_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_TAG_KEY = re.compile(r"[\w\s.:/=+\-@]{1,128}")
MAX_SESSION_TAGS = 50


def source_identity_claim(claims: Mapping[str, Any]) -> str | None:
    value = claims.get(SOURCE_IDENTITY_CLAIM)
    if value is None:
        return None
    if not isinstance(value, str) or not _SOURCE_IDENTITY.fullmatch(value) or value.lower().startswith("aws:"):
        raise Refused(invalid_token(BAD_SOURCE_IDENTITY))
    return value


@dataclass(frozen=True)
class SessionTags:
    tags: Mapping[str, str] = field(default_factory=dict)
    transitive_keys: tuple[str, ...] = ()


def tags_claim(claims: Mapping[str, Any]) -> SessionTags | None:
    """The `https://aws.amazon.com/tags` claim: `principal_tags` maps each key to a list
    holding one value, `transitive_tag_keys` names some of those keys."""
    if TAGS_CLAIM not in claims:
        return None
    claim = claims[TAGS_CLAIM]
    if not isinstance(claim, dict) or not set(claim) <= {"principal_tags", "transitive_tag_keys"}:
        raise Refused(invalid_token(BAD_TAGS))
    principal = claim.get("principal_tags") or {}
    transitive = claim.get("transitive_tag_keys") or []
    if not isinstance(principal, dict) or not isinstance(transitive, list) or len(principal) > MAX_SESSION_TAGS:
        raise Refused(invalid_token(BAD_TAGS))
    tags: dict[str, str] = {}
    for key, values in principal.items():
        single = (
            values
            if isinstance(values, str)
            else (values[0] if isinstance(values, list) and len(values) == 1 else None)
        )
        if (
            not isinstance(single, str)
            or len(single) > 256
            or not _TAG_KEY.fullmatch(key)
            or key.lower().startswith("aws:")
            or key.lower() in {k.lower() for k in tags}
        ):
            raise Refused(invalid_token(BAD_TAGS))
        tags[key] = single
    lowered = {k.lower() for k in tags}
    if not all(isinstance(k, str) and k.lower() in lowered for k in transitive):
        raise Refused(invalid_token(BAD_TAGS))
    return SessionTags(tags, tuple(transitive))


# ---------------------------------------------------------------------------- providers & trust


@dataclass(frozen=True)
class OidcProvider:
    arn: str
    url: str  # without the scheme, as IAM stores it: host[/path]
    client_ids: tuple[str, ...] = ()


def provider_arn(issuer: str, account: str, partition: str = "aws") -> str | None:
    """The ARN an IAM OIDC provider for `issuer` has: IAM only registers https:// URLs."""
    if not issuer.startswith("https://"):
        return None
    resource = issuer.removeprefix("https://").rstrip("/")
    return f"arn:{partition}:iam::{account}:oidc-provider/{resource}" if resource else None


@dataclass(frozen=True)
class TrustRequest:
    provider: OidcProvider
    account: str
    role_session_name: str
    subject: str
    audience: str
    amr: tuple[str, ...] = ()
    source_identity: str | None = None
    tags: SessionTags | None = None


def web_identity_caller(request: TrustRequest) -> Caller:
    return Caller(
        arn=request.provider.arn,
        account=request.account,
        principal_type="WebIdentityUser",
        principal_arn=request.provider.arn,
    )


def trust_context(request: TrustRequest) -> dict[str, list[str]]:
    """The condition keys IAM provides for AssumeRoleWithWebIdentity with a generic OIDC
    provider (names are case-insensitive; the evaluator lower-cases them)."""
    url = request.provider.url
    context: dict[str, list[str]] = {
        f"{url}:aud": [request.audience],
        f"{url}:sub": [request.subject],
        "sts:rolesessionname": [request.role_session_name],
        "aws:federatedprovider": [request.provider.arn],
    }
    if request.amr:
        context[f"{url}:amr"] = list(request.amr)
    if request.source_identity is not None:
        context["sts:sourceidentity"] = [request.source_identity]
    if request.tags is not None and request.tags.tags:
        context["aws:tagkeys"] = list(request.tags.tags)
        for key, value in request.tags.tags.items():
            context[f"aws:requesttag/{key.lower()}"] = [value]
    if request.tags is not None and request.tags.transitive_keys:
        context["sts:transitivetagkeys"] = list(request.tags.transitive_keys)
    return context


def required_actions(request: TrustRequest) -> tuple[str, ...]:
    actions = [ASSUME_ROLE_WITH_WEB_IDENTITY]
    if request.source_identity is not None:
        actions.append(SET_SOURCE_IDENTITY)
    if request.tags is not None:
        actions.append(TAG_SESSION)
    return tuple(actions)


# LocalStack's CloudFormation rewrites every string value that is a whole execute-api URL,
# https://{api}.execute-api.{region}.{amazonaws.com|localhost.localstack.cloud}/{path}, into its
# own reachable form https://{api}.execute-api.localhost.localstack.cloud:{port}/{path}. A stack's
# OIDC provider Url and its function's issuer setting get rewritten; the same URL inside a JSON
# document (a trust policy's `<provider>:sub` condition key) does not. On AWS both are one
# string, so a trust policy key in the unrewritten form names the rewritten provider.
_LOCALSTACK_REWRITTEN = re.compile(r"(?P<api>[a-z0-9]+)\.execute-api\.localhost\.localstack\.cloud:\d+(?P<path>/.*)?")
_UNREWRITTEN = re.compile(
    r"(?P<api>[a-z0-9]+)\.execute-api\.[a-z0-9-]+\.(?:amazonaws\.com(?:\.cn)?|localhost\.localstack\.cloud)(?P<path>/.*)?"
)


def names_provider(prefix: str, provider_url: str) -> bool:
    """Whether a condition key's provider part (`<prefix>:sub`) names the provider stored as
    `provider_url`, allowing for LocalStack's rewriting of execute-api URLs (above)."""
    if prefix.lower() == provider_url.lower():
        return True
    rewritten, written = _LOCALSTACK_REWRITTEN.fullmatch(provider_url.lower()), _UNREWRITTEN.fullmatch(prefix.lower())
    return bool(rewritten and written and rewritten["api"] == written["api"] and rewritten["path"] == written["path"])


def align_provider_keys(policy: Mapping[str, Any], provider_url: str) -> dict[str, Any]:
    """The policy with each condition key that names the provider in another spelling
    renamed to `<provider_url>:<claim>` (a no-op unless LocalStack rewrote the provider URL)."""
    if not _LOCALSTACK_REWRITTEN.fullmatch(provider_url.lower()):
        return dict(policy)

    def align(key: str) -> str:
        prefix, sep, claim = key.rpartition(":")
        return (
            f"{provider_url}:{claim}"
            if sep and prefix != provider_url and names_provider(prefix, provider_url)
            else key
        )

    statements = policy.get("Statement")
    aligned = []
    for statement in statements if isinstance(statements, list) else [statements]:
        condition = statement.get("Condition") if isinstance(statement, Mapping) else None
        if isinstance(condition, Mapping):
            statement = {
                **statement,
                "Condition": {
                    operator: {align(k): v for k, v in block.items()} if isinstance(block, Mapping) else block
                    for operator, block in condition.items()
                },
            }
        aligned.append(statement)
    return {**policy, "Statement": aligned}


def trust_allows(role: TargetRole, request: TrustRequest) -> bool:
    caller, context = web_identity_caller(request), trust_context(request)
    try:
        document = align_provider_keys(parse_policy(role.trust_policy), request.provider.url)
        return all(
            evaluate(document, action, caller, context) is Decision.ALLOW for action in required_actions(request)
        )
    except PolicyError:
        return False  # fail closed: what cannot be read must not let a test pass that AWS would fail


# ---------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class WebIdentityGrant:
    """What STS issues when every rule passes."""

    role: TargetRole
    provider: OidcProvider
    issuer: str
    subject: str
    audience: str
    duration_seconds: int
    source_identity: str | None = None
    tags: SessionTags | None = None


@dataclass(frozen=True)
class Verdict:
    """A grant or a refusal, plus what the journal records either way (never the token)."""

    grant: WebIdentityGrant | None = None
    refusal: Refusal | None = None
    principal: str = ""  # the provider ARN once found, else the token's issuer when readable
    subject: str | None = None
    source_identity: str | None = None


def judge(
    request: WebIdentityRequest,
    *,
    lookup_role: Callable[[str], TargetRole | None],
    lookup_provider: Callable[[str], OidcProvider | None],
    keys: KeySource,
    now: float,
) -> Verdict:
    """STS's verdict on one AssumeRoleWithWebIdentity, the rules in the module docstring
    applied in that order: the token is authenticated (provider, audience, signature,
    times) before the role's trust policy is read, so a forged token learns nothing
    about the role; the duration is checked last, as for AssumeRole."""
    principal, subject, source_identity = "", None, None
    try:
        if (refusal := parameter_refusal(request)) is not None:
            raise Refused(refusal)
        arn_parts = parse_role_arn(request.role_arn)
        if arn_parts is None:
            raise Refused(_validation(f"{request.role_arn} is invalid"))
        partition, account, _ = arn_parts
        jws = parse_jws(request.token)
        alg = check_algorithm(jws)
        issuer = required_string(jws.claims, "iss")
        principal = issuer
        token_audiences = audiences(jws.claims)
        subject = required_string(jws.claims, "sub")
        wanted_arn = provider_arn(issuer, account, partition)
        provider = lookup_provider(wanted_arn) if wanted_arn else None
        if provider is None:
            raise Refused(invalid_token(no_provider_message(issuer)))
        principal = provider.arn
        audience = next((a for a in token_audiences if a in provider.client_ids), None)
        if audience is None:
            raise Refused(invalid_token(INCORRECT_AUDIENCE))
        verify_signature(jws, alg, issuer, keys)
        check_times(jws.claims, int(now))
        source_identity = source_identity_claim(jws.claims)
        tags = tags_claim(jws.claims)
        amr = jws.claims.get("amr")
        trust = TrustRequest(
            provider=provider,
            account=account,
            role_session_name=request.role_session_name,
            subject=subject,
            audience=audience,
            amr=tuple(str(a) for a in amr) if isinstance(amr, list) else ((amr,) if isinstance(amr, str) else ()),
            source_identity=source_identity,
            tags=tags,
        )
        # a missing role is refused like an untrusting one: no probing which roles exist
        role = lookup_role(request.role_arn)
        if role is None or not trust_allows(role, trust):
            raise Refused(ACCESS_DENIED)
        duration = request.duration_seconds or DEFAULT_DURATION
        if duration > role.max_session_duration:
            raise Refused(_validation(MAX_SESSION_MESSAGE))
    except Refused as refused:
        return Verdict(refusal=refused.refusal, principal=principal, subject=subject, source_identity=source_identity)
    grant = WebIdentityGrant(role, provider, issuer, subject, audience, duration, source_identity, tags)
    return Verdict(grant=grant, principal=provider.arn, subject=subject, source_identity=source_identity)


# ---------------------------------------------------------------------------- LocalStack adapter
# Everything below runs only inside LocalStack; its imports are lazy so that the rules above
# stay importable (and unit-testable) without it.


def gateway_url() -> str:
    """LocalStack's own base URL, by IP literal (its hostnames do not resolve here)."""
    from localstack import config

    return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}"


# 5 minutes: a stack's JWKS is served by its function, so each fetch is a Lambda invocation;
# a rotated key is still picked up at once (an unknown kid fetches again)
KEYS = JwksCache(fetch_json, lambda url: resolve_fetch_url(url, gateway_url()), ttl=300.0)


def lookup_provider(arn: str) -> OidcProvider | None:
    from localstack.services.iam.models import iam_stores

    account = arn.split(":")[4]
    # OIDC providers are cross-region in LocalStack's IAM store, as in IAM
    stored = iam_stores[account]["us-east-1"].OIDC_PROVIDERS.get(arn)
    if stored is None:
        return None
    # the condition-key prefix is the provider's name as its ARN has it: LocalStack stores the
    # URL as given, so an issuer created with a trailing slash would otherwise keep it
    url = stored.arn.split(":oidc-provider/", 1)[-1]
    return OidcProvider(arn=stored.arn, url=url, client_ids=tuple(stored.client_id_list or ()))


def install() -> None:
    """Replace the STS provider's AssumeRoleWithWebIdentity with the judged one. Called from
    the STS rules' on_infra_start hook, before the provider serves any request."""
    from localstack.services.sts.provider import StsProvider
    from localstack.utils.patch import patch

    patch(StsProvider.assume_role_with_web_identity)(judged_assume_role_with_web_identity)


def judged_assume_role_with_web_identity(
    fn: Callable[..., Any],
    self: Any,
    context: RequestContext,
    role_arn: str,
    role_session_name: str,
    web_identity_token: str,
    provider_id: str | None = None,
    policy_arns: Sequence[Any] | None = None,
    policy: str | None = None,
    duration_seconds: int | None = None,
    **kwargs: Any,
) -> Any:
    """`fn` (LocalStack's own, which grants anything) is never called."""
    from localstack.aws.api import CommonServiceException

    from .sts_rules import JOURNAL, lookup_role

    request = WebIdentityRequest(role_arn, role_session_name, web_identity_token, duration_seconds)
    verdict = judge(request, lookup_role=lookup_role, lookup_provider=lookup_provider, keys=KEYS.keys, now=time.time())

    def record(error_code: str | None = None, error_message: str | None = None) -> None:
        JOURNAL.record(
            caller_arn=verdict.principal,
            role_arn=role_arn,
            role_session_name=role_session_name,
            duration_seconds=duration_seconds,
            source_identity=verdict.source_identity,
            error_code=error_code,
            error_message=error_message,
            operation=OPERATION,
            subject=verdict.subject,
            request_id=context.request_id,  # the answer's RequestId (CloudTrail's requestID)
        )

    if verdict.grant is None:
        refusal = verdict.refusal
        assert refusal is not None
        record(refusal.code, refusal.message)
        LOG.info(
            "credvend STS rules refuse AssumeRoleWithWebIdentity of %s: %s %s", role_arn, refusal.code, refusal.message
        )
        raise CommonServiceException(refusal.code, refusal.message, refusal.status, sender_fault=True)
    response = _issue(self, context, verdict.grant, role_session_name)
    record()
    return response


def _issue(provider: Any, context: RequestContext, grant: WebIdentityGrant, session_name: str) -> Any:
    """Issue the session through LocalStack's own credential store, with the source
    identity and tags on it, and answer with AWS's fields."""
    from localstack.aws.api.sts import AssumedRoleUser, AssumeRoleWithWebIdentityResponse
    from localstack.services.iam.models import iam_stores

    partition, account, role_name = parse_role_arn(grant.role.arn) or ("aws", context.account_id, "unknown")
    entity = iam_stores[account]["us-east-1"].ROLES.get(role_name)
    role_id = entity.role["RoleId"] if entity is not None else role_name
    assumed_role_id = f"{role_id}:{session_name}"
    assumed_arn = f"arn:{partition}:sts::{account}:assumed-role/{role_name}/{session_name}"
    tags = grant.tags or SessionTags()
    credentials = provider._create_credentials(
        account_id=account,
        arn=assumed_arn,
        user_id=assumed_role_id,
        duration_seconds=grant.duration_seconds,
        source_identity=grant.source_identity,
        # LocalStack's shape: lower-cased key -> {"Key", "Value"}; transitive keys lower-cased
        tags={k.lower(): {"Key": k, "Value": v} for k, v in tags.tags.items()} or None,
        transitive_tags=[k.lower() for k in tags.transitive_keys] or None,
    )
    response = AssumeRoleWithWebIdentityResponse(
        Credentials=provider._to_credentials_response(credentials),
        SubjectFromWebIdentityToken=grant.subject,
        AssumedRoleUser=AssumedRoleUser(AssumedRoleId=assumed_role_id, Arn=assumed_arn),
        Provider=grant.provider.arn,
        Audience=grant.audience,
    )
    if grant.source_identity is not None:
        response["SourceIdentity"] = grant.source_identity
    return response
