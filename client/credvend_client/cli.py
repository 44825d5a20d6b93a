"""``credvend``: the command line. See docs/client.md for the user's guide.

stdout carries only the requested output (credentials, JSON, export lines, the ``serve``
ready line); every error is one line on stderr, ``credvend: error: Code: message (HTTP
status, request id)``, and never contains a secret. Exit codes: :mod:`credvend_client.errors`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn
from urllib.parse import urlsplit

import botocore.session  # type: ignore[import-untyped, unused-ignore]

from credvend_client import __version__
from credvend_client.api import (
    ENDPOINT_ENV,
    PROFILE_ENV,
    TOKEN_FILE_ENV,
    CredvendClient,
    RetryPolicy,
    Timeouts,
    build_client,
    guard_credential_process_recursion,
)
from credvend_client.credentials import VendedCredentials, checked_credential_process
from credvend_client.errors import CredvendError, DeniedError, ExitCode, UpstreamError, UsageError, one_line

PROG = "credvend"
POLICY_FILE_ENV = "CREDVEND_POLICY_FILE"
VENDING_ROLE_ENV = "CREDVEND_VENDING_ROLE_ARN"
ISSUER_ENV = "CREDVEND_ISSUER"
DEFAULT_POLICY_FILE = "policy.yaml"
MIN_DURATION, MAX_DURATION = 1, 43200  # what the service accepts; it clamps to 900..caps itself
# The sidecar answers SDKs that give up after 2 s (botocore) and retry; its upstream budget
# is short so a failing upstream does not pile up waiting requests.
DEFAULT_RETRY = RetryPolicy()
SERVE_RETRY = RetryPolicy(max_attempts=3, base_delay=0.25, max_delay=2.0, max_retry_after=5.0)
SERVE_TIMEOUTS = Timeouts(connect=3.0, read=10.0)


# --- argument parsing -----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line error and exit code 2 the rest of the command uses."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{PROG}: error: Usage: {one_line(message)} (see `{self.prog} --help`)\n")


def _decimal(text: str, what: str) -> int:
    """ASCII digits only: ``int()`` alone also takes " 900\n", "9_00" and non-ASCII digits."""
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}")
    return int(text)


def _duration(text: str) -> int:
    value = _decimal(text, "an integer")
    if not MIN_DURATION <= value <= MAX_DURATION:
        raise argparse.ArgumentTypeError(f"must be {MIN_DURATION}..{MAX_DURATION} seconds (the service clamps)")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _port(text: str) -> int:
    value = _decimal(text, "a port")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0..65535 (0: any free port)")
    return value


def _token_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token-file",
        dest="oidc_token_file",
        metavar="PATH",
        help=f"authenticate with the OIDC token in PATH (read at every request) on the OIDC routes, instead of "
        f"signing with AWS credentials (default: ${TOKEN_FILE_ENV})",
    )


def build_parser() -> argparse.ArgumentParser:
    connection = _Parser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument("--endpoint", metavar="URL", help=f"API stage URL (default: ${ENDPOINT_ENV})")
    group.add_argument(
        "--region",
        help="region to sign for (default: from an AWS endpoint URL, else $AWS_REGION, $AWS_DEFAULT_REGION, profile)",
    )
    group.add_argument(
        "--profile", help=f"AWS profile whose credentials sign the request (default: ${PROFILE_ENV}, else the chain)"
    )
    group.add_argument(
        "--timeout", type=_positive_seconds, metavar="SECONDS", help="read timeout per attempt (default 15)"
    )

    parser = _Parser(
        prog=PROG,
        description="Get short-lived AWS credentials from a credvend endpoint, signed with your own AWS identity.",
        epilog="Exit codes: 0 ok, 2 usage or configuration, 3 denied (401/403), 4 upstream (429, 5xx, network).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    get = commands.add_parser(
        "get", parents=[connection], help="print credentials for a role", description="Print credentials for ROLE."
    )
    get.add_argument("role", metavar="ROLE", help="role alias from the policy file")
    get.add_argument("--duration", type=_duration, metavar="N", help="seconds requested (the service clamps)")
    get.add_argument(
        "--format",
        choices=("json", "credential-process", "env"),
        default="json",
        help="json: the service's envelope (STS shape); credential-process: the credential_process document; "
        "env: export lines for eval",
    )
    _token_file_option(get)
    get.add_argument(
        "--dry-run",
        action="store_true",
        help="print the grant the service would give now (caller, role, session name, granted duration and "
        "what limited it) without issuing credentials",
    )
    get.set_defaults(run=run_get)

    process = commands.add_parser(
        "credential-process",
        parents=[connection],
        help="credential_process program for ~/.aws/config",
        description="Print the credential_process document for ROLE. Use it in ~/.aws/config: "
        "credential_process = credvend credential-process ROLE",
    )
    process.add_argument("role", metavar="ROLE")
    process.add_argument("--duration", type=_duration, metavar="N")
    _token_file_option(process)
    process.set_defaults(run=run_credential_process)

    serve = commands.add_parser(
        "serve",
        parents=[connection],
        help="loopback sidecar for the SDKs' container credentials provider",
        description="Serve GET /roles/ROLE on 127.0.0.1 in the container-credentials format. The token callers "
        "must send is written to a 0600 file (no trailing newline). The first stdout line is JSON (event, port, "
        "url, token_file); then the variables a service must set.",
    )
    serve.add_argument("--port", type=_port, default=0, help="TCP port on 127.0.0.1 (default 0: any free port)")
    serve.add_argument(
        "--role", action="append", dest="roles", metavar="ROLE", help="serve only this role (repeatable)"
    )
    serve.add_argument(
        "--token-file",
        metavar="PATH",
        help="write the token here (mode 0600, no newline; default: $XDG_RUNTIME_DIR/credvend/token, else a "
        "private temporary folder); the token is $CREDVEND_SERVE_TOKEN if set, else random",
    )
    serve.add_argument(
        "--print-token",
        action="store_true",
        help="also print the token itself on stdout (not by default: stdout is often a log stream)",
    )
    serve.add_argument("--duration", type=_duration, metavar="N", help="seconds requested per upstream vend")
    serve.add_argument("--access-log", action="store_true", help="log every request line on stderr")
    serve.set_defaults(run=run_serve)

    trust = commands.add_parser(
        "trust-policy",
        help="the trust policy an external role's owner must apply",
        description="Print the IAM trust policy for ALIAS, built by the same code as the CDK stack's.",
    )
    trust.add_argument("alias", metavar="ALIAS")
    trust.add_argument("--policy", metavar="FILE", help=f"policy file (default: ${POLICY_FILE_ENV}, else policy.yaml)")
    trust.add_argument(
        "--vending-role-arn",
        metavar="ARN",
        help=f"the vending function's execution role (default: ${VENDING_ROLE_ENV}; a stack output)",
    )
    trust.add_argument(
        "--issuer",
        metavar="URL",
        help=f"for a web_identity role: credvend's issuer URL (default: ${ISSUER_ENV}, else ${ENDPOINT_ENV}: "
        "the API stage URL is the issuer)",
    )
    trust.add_argument(
        "--trust-policy-quota",
        type=_trust_policy_quota,
        default=None,
        metavar="N",
        help="the role account's IAM trust-policy quota: 2048 (default) up to 4096 if raised; "
        "callers that do not fit are required but not listed",
    )
    trust.set_defaults(run=run_trust_policy)

    revoke = commands.add_parser(
        "revoke",
        help="deny one caller's live sessions (operator)",
        description="With your own AWS credentials (an operator of the stack's account): put the inline policy "
        "credvend-revocations on each affected created role, denying everything to CALLER's sessions issued "
        "before TIME (default now). Other callers' sessions keep working; CALLER's next vend works. "
        "--list shows revocations in place; --clear lifts CALLER's. For a role credvend does not own "
        "(arn: in the policy file) the statement is printed for its owner. A later cdk deploy keeps them.",
    )
    revoke.add_argument("--caller", metavar="NAME", help="caller name in the policy file")
    revoke.add_argument(
        "--role",
        action="append",
        dest="roles",
        metavar="ALIAS",
        help="only this role (repeatable; default: every role the policy grants CALLER)",
    )
    revoke.add_argument(
        "--before", metavar="TIME", help="revoke sessions issued before TIME, ISO 8601 with a zone (default: now)"
    )
    revoke_mode = revoke.add_mutually_exclusive_group()
    revoke_mode.add_argument("--list", action="store_true", help="list the revocations on the created roles")
    revoke_mode.add_argument("--clear", action="store_true", help="lift CALLER's revocation")
    revoke.add_argument("--policy", metavar="FILE", help=f"policy file (default: ${POLICY_FILE_ENV}, else policy.yaml)")
    revoke.add_argument("--profile", help="AWS profile to act with (default: the credential chain)")
    revoke.add_argument("--region", help="region for IAM's endpoint (default: the chain's)")
    revoke.set_defaults(run=run_revoke)

    policy = commands.add_parser("policy", help="work with the policy file", description="Work with the policy file.")
    policy_commands = policy.add_subparsers(
        dest="policy_command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    check = policy_commands.add_parser(
        "check",
        help="validate a policy file offline",
        description="Validate a policy file offline. Problems go to stderr, one per line with their path; "
        "exit 2 when there is any.",
    )
    check.add_argument("file", nargs="?", metavar="FILE", help=f"default: ${POLICY_FILE_ENV}, else policy.yaml")
    check.add_argument(
        "--quotas",
        action="store_true",
        help="also print every AWS quota the stack's documents are held to, with their sizes",
    )
    check.add_argument("--stack-name", default="Credvend", metavar="NAME", help="the stack_name context (sizes ARNs)")
    check.add_argument(
        "--trust-policy-quota", type=_trust_policy_quota, default=None, metavar="N", help="as the app's context"
    )
    check.add_argument("--organization-id", metavar="ID", help="as the app's organization_id context")
    check.set_defaults(run=run_policy_check)
    explain = policy_commands.add_parser(
        "explain",
        help="the grant a caller would get, from the policy file alone",
        description="Print the decision the deployed function would make for a caller and a role, from the "
        "policy file alone, with the function's own code: the grant (granted duration and what limited it, "
        "session name, source identity) or the denial and its reason. Offline it assumes the function runs "
        "on AWS Lambda (assume_role grants are role chaining, at most 1 hour) and says so. Exit 0 granted, "
        "3 denied, 2 usage.",
    )
    explain.add_argument("file", nargs="?", metavar="FILE", help=f"default: ${POLICY_FILE_ENV}, else policy.yaml")
    explain.add_argument("--role", required=True, metavar="ALIAS", help="role alias the caller asks for")
    who = explain.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--principal",
        metavar="ARN",
        help="the caller's SigV4 identity: an IAM user or role ARN, or an assumed-role session ARN",
    )
    who.add_argument(
        "--claims",
        metavar="JSON",
        help='an OIDC caller: its token\'s claims as a JSON object (with "sub"), taken as verified; needs --issuer',
    )
    explain.add_argument("--issuer", metavar="NAME", help="with --claims: the issuer's name under issuers: in the file")
    explain.add_argument("--duration", type=_duration, metavar="N", help="seconds requested (default: the policy's)")
    explain.add_argument(
        "--account", metavar="ID", help="account the stack deploys to (created roles' ARNs; default: the caller's)"
    )
    explain.set_defaults(run=run_policy_explain)
    return parser


# --- commands -------------------------------------------------------------------------------


def _client(
    args: argparse.Namespace, *, retry: RetryPolicy | None = None, timeouts: Timeouts | None = None
) -> CredvendClient:
    base = timeouts or Timeouts()
    if args.timeout is not None:
        base = Timeouts(connect=min(base.connect, args.timeout), read=args.timeout)
    return build_client(
        endpoint=args.endpoint,
        region=args.region,
        profile=args.profile,
        timeouts=base,
        retry=retry or DEFAULT_RETRY,
        token_file=getattr(args, "oidc_token_file", None),
    )


def _print_json(document: Any, *, indent: int | None = 2) -> None:
    separators = None if indent else (",", ":")
    sys.stdout.write(json.dumps(document, indent=indent, separators=separators) + "\n")


def run_get(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.dry_run:
        if args.format != "json":
            raise UsageError("InvalidFormat", "--dry-run prints the grant as JSON; it has no credentials to format")
        answer = client.vend(args.role, duration=args.duration, fmt="json", dry_run=True)
        if answer.get("DryRun") is not True or not isinstance(answer.get("Grant"), dict) or "Credentials" in answer:
            raise UpstreamError("InvalidResponse", "the service did not answer the dry run with a grant")
        _print_json(answer)
        return ExitCode.OK
    if args.format == "credential-process":
        _print_json(
            checked_credential_process(client.vend(args.role, duration=args.duration, fmt="credential_process"))
        )
    elif args.format == "env":
        envelope = client.vend(args.role, duration=args.duration, fmt="json")
        sys.stdout.write(VendedCredentials.from_envelope(envelope).env_exports())
    else:
        envelope = client.vend(args.role, duration=args.duration, fmt="json")
        VendedCredentials.from_envelope(envelope)  # fail (exit 4) on a garbled answer, not later in a script
        _print_json(envelope)
    return ExitCode.OK


def run_credential_process(args: argparse.Namespace) -> int:
    guard_credential_process_recursion(os.environ)
    client = _client(args)
    document = checked_credential_process(client.vend(args.role, duration=args.duration, fmt="credential_process"))
    _print_json(document, indent=None)
    return ExitCode.OK


def _load_policy(path_arg: str | None) -> Any:
    from credvend_policy import PolicyError, load_policy  # pydantic/yaml only for the commands that need them

    path = path_arg or os.environ.get(POLICY_FILE_ENV) or DEFAULT_POLICY_FILE
    try:
        return path, load_policy(path)
    except PolicyError as exc:
        for location, message in exc.problems:
            sys.stderr.write(f"{PROG}: {exc.source}: {location or '<root>'}: {one_line(message)}\n")
        raise UsageError("InvalidPolicy", f"{exc.source}: {len(exc.problems)} problem(s)") from None


def _trust_policy_quota(text: str) -> int:
    from credvend_policy.quotas import TRUST_POLICY, TRUST_POLICY_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not TRUST_POLICY <= value <= TRUST_POLICY_MAX:
        raise argparse.ArgumentTypeError(f"IAM's trust policy quota is {TRUST_POLICY}..{TRUST_POLICY_MAX}, got {value}")
    return value


def run_policy_check(args: argparse.Namespace) -> int:
    """Validate the file, then hold what the stack would generate from it against AWS's
    quotas (the same builders and checks as ``cdk synth``): a file that passes here does
    not fail a deploy halfway on a document's size."""
    from credvend_policy.api_policy import is_organization_id
    from credvend_policy.quotas import TRUST_POLICY, Limits, policy_findings

    path, policy = _load_policy(args.file)
    if args.organization_id is not None and not is_organization_id(args.organization_id):
        raise UsageError("InvalidOrganization", f"{args.organization_id!r} is not an AWS Organizations id (o-...)")
    report = policy_findings(
        policy,
        stack_name=args.stack_name,
        limits=Limits(trust_policy=args.trust_policy_quota or TRUST_POLICY),
        organization_id=args.organization_id,
    )
    over = [finding for finding in report.findings if finding.exceeded]
    for finding in over:
        sys.stderr.write(f"{PROG}: {path}: over quota: {finding}\n")
    for alias in report.unlisted:
        sys.stderr.write(
            f"{PROG}: {path}: warning: the trust policy of role {alias!r} requires a source identity without "
            "listing its callers (they do not fit the trust policy quota; the function still authorizes each)\n"
        )
    if args.quotas:
        for finding in report.findings:
            sys.stdout.write(f"  {finding}\n")
    if over:
        raise UsageError("OverQuota", f"{path}: {len(over)} document(s) over AWS quotas")
    sys.stdout.write(f"{path}: ok ({len(policy.roles)} role(s), {len(policy.callers)} caller(s))\n")
    return ExitCode.OK


def run_policy_explain(args: argparse.Namespace) -> int:
    # The function's own domain code (shipped with the client, see pyproject.toml), so the
    # explanation is the service's decision, not a second implementation of it.
    from credvend.domain.errors import AccessDenied
    from credvend.domain.errors import CredvendError as DecisionError
    from credvend.domain.explain import explain, oidc_identity
    from credvend.domain.formats import grant_document

    if (args.claims is None) != (args.issuer is None):
        raise UsageError("Usage", "--claims and --issuer go together (an OIDC caller); --principal takes neither")
    path, policy = _load_policy(args.file)
    answer: dict[str, Any] = {"DryRun": True, "Policy": str(path)}
    try:
        token = None
        if args.claims is not None:
            try:
                unverified_claims = json.loads(args.claims)
            except ValueError:
                raise UsageError("InvalidClaims", "--claims is not valid JSON") from None
            token = oidc_identity(policy, issuer=args.issuer, unverified_claims=unverified_claims)
        explanation = explain(
            policy,
            principal_arn=args.principal,
            token=token,
            alias=args.role,
            duration=args.duration,
            account=args.account,
        )
    except DecisionError as exc:
        error: dict[str, Any] = {"Code": exc.code, "Message": exc.message}
        if isinstance(exc, AccessDenied):
            error["Reason"] = exc.reason  # what the service logs and never tells the caller
        answer["Error"] = error
        _print_json(answer)
        reason = f" ({error['Reason']})" if "Reason" in error else ""
        failure = DeniedError if exc.status in (401, 403) else UsageError
        raise failure(exc.code, f"{exc.message}{reason}") from None
    answer["Grant"] = grant_document(explanation.grant)
    answer["Assumptions"] = list(explanation.assumptions)
    _print_json(answer)
    return ExitCode.OK


def _iam_client(args: argparse.Namespace) -> Any:
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped, unused-ignore]

    try:
        session = botocore.session.Session(profile=args.profile or os.environ.get(PROFILE_ENV) or None)
        region = args.region or os.environ.get("AWS_REGION") or session.get_config_variable("region") or "us-east-1"
        return session.create_client("iam", region_name=region)
    except BotoCoreError as exc:
        raise UsageError("InvalidConfig", str(exc)) from None


def run_revoke(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from credvend_client import revoke
    from credvend_policy.revocation import parse_time

    if args.list:
        if args.caller or args.roles or args.before:
            raise UsageError("Usage", "--list takes no --caller, --role or --before")
        _, policy = _load_policy(args.policy)
        _print_json(revoke.listing(_iam_client(args), policy))
        return ExitCode.OK
    if not args.caller:
        raise UsageError("Usage", "name the caller: --caller NAME (or --list)")
    _, policy = _load_policy(args.policy)
    if args.clear:
        if args.before:
            raise UsageError("Usage", "--clear takes no --before")
        _print_json(revoke.clear(_iam_client(args), policy, caller=args.caller, aliases=args.roles))
        return ExitCode.OK
    try:
        before = parse_time(args.before) if args.before else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError("InvalidTime", str(exc)) from None
    _print_json(revoke.revoke(_iam_client(args), policy, caller=args.caller, aliases=args.roles, before=before))
    return ExitCode.OK


def run_trust_policy(args: argparse.Namespace) -> int:
    path, policy = _load_policy(args.policy)
    if args.alias not in policy.roles:
        known = ", ".join(sorted(policy.roles))
        raise UsageError("UnknownRole", f"{args.alias!r} is not a role in {path} (roles: {known})")
    if policy.issuance_of(args.alias) == "web_identity":
        return _print_web_identity_trust(args, policy)
    vending_role_arn = _vending_role_arn(args)
    _print_json(_budgeted_trust_policy(args, policy, vending_role_arn=vending_role_arn))
    return ExitCode.OK


def _vending_role_arn(args: argparse.Namespace) -> str:
    from credvend_policy.principals import is_role_arn

    vending_role_arn: str | None = args.vending_role_arn or os.environ.get(VENDING_ROLE_ENV)
    if not vending_role_arn:
        raise UsageError("NoVendingRole", f"pass --vending-role-arn ARN or set {VENDING_ROLE_ENV} (a stack output)")
    if not is_role_arn(vending_role_arn):
        raise UsageError("InvalidArn", f"{vending_role_arn!r} is not an IAM role ARN")
    return vending_role_arn


def _print_web_identity_trust(args: argparse.Namespace, policy: Any) -> int:
    """A web_identity role's owner needs two things in the role's account: an IAM OIDC
    provider for credvend's issuer, and the trust policy naming it."""
    from credvend_policy import parse_arn
    from credvend_policy.trust import oidc_provider_spec

    issuer = (args.issuer or os.environ.get(ISSUER_ENV) or os.environ.get(ENDPOINT_ENV) or "").rstrip("/")
    if not issuer.startswith("https://"):
        raise UsageError(
            "NoIssuer",
            f"{args.alias!r} uses web_identity issuance: pass --issuer URL (https://, the stack's IssuerUrl output) "
            f"or set {ISSUER_ENV}",
        )
    role = policy.roles[args.alias]
    parsed = parse_arn(role.arn or "")
    if parsed is None:
        raise UsageError(
            "NotExternal", f"{args.alias!r} is created by the stack, which also creates its provider and trust"
        )
    provider = oidc_provider_spec(issuer, partition=parsed.partition, account=parsed.account)
    document = _budgeted_trust_policy(args, policy, vending_role_arn="", issuer=issuer, provider_arn=provider["Arn"])
    _print_json({"OpenIDConnectProvider": provider, "TrustPolicy": document})
    return ExitCode.OK


def _budgeted_trust_policy(
    args: argparse.Namespace,
    policy: Any,
    *,
    vending_role_arn: str,
    issuer: str | None = None,
    provider_arn: str | None = None,
) -> dict[str, Any]:
    from credvend_policy.quotas import TRUST_POLICY
    from credvend_policy.trust import trust_policy

    document = trust_policy(
        policy,
        args.alias,
        vending_role_arn=vending_role_arn,
        budget=args.trust_policy_quota or TRUST_POLICY,
        issuer=issuer,
        oidc_provider_arn=provider_arn,
    )
    if document.lists_dropped:
        sys.stderr.write(
            f"{PROG}: warning: the callers granted {args.alias!r} do not fit the trust policy quota; the policy "
            "requires a source identity without listing them (--trust-policy-quota 4096 if the account's is raised)\n"
        )
    return document.document


def _refuse_self_signing(port: int) -> None:
    """The sidecar must sign with its own identity, never with what it serves.

    If this process's own container-credentials variable points at this very server, the
    default chain would ask the sidecar for credentials to sign the sidecar's upstream call.
    """
    full_uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if not full_uri:
        return
    target = urlsplit(full_uri)
    if target.hostname in ("127.0.0.1", "localhost", "::1") and target.port == port:
        raise UsageError(
            "SelfReference",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI points at this sidecar; serve must sign with its own "
            "credentials: unset it for the sidecar process (set it only for the services)",
        )


def run_serve(args: argparse.Namespace) -> int:
    from credvend_client.cache import CredentialCache
    from credvend_client.sidecar import (
        TOKEN_ENV,
        SidecarServer,
        check_token_value,
        default_token_file,
        new_token,
        upstream_fetch,
        write_token_file,
    )

    if args.port:
        _refuse_self_signing(args.port)
    client = _client(args, retry=SERVE_RETRY, timeouts=SERVE_TIMEOUTS)
    for role in args.roles or ():
        client.credentials_url(role, duration=None, fmt="container")  # rejects a malformed alias now

    def log(message: str) -> None:
        sys.stderr.write(f"{PROG} serve: {one_line(message, limit=500)}\n")
        sys.stderr.flush()

    try:
        token = check_token_value(os.environ.get(TOKEN_ENV) or new_token())
    except ValueError as exc:
        raise UsageError("InvalidToken", f"{TOKEN_ENV}: {exc}") from None
    cache = CredentialCache(upstream_fetch(client, duration=args.duration), on_event=log)
    try:
        server = SidecarServer(
            args.port,
            cache=cache,
            token=token,
            allowed_roles=args.roles,
            access_log=log if args.access_log else None,
            error_log=log,
        )
    except OSError as exc:
        raise UsageError("CannotListen", f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    _refuse_self_signing(server.port)

    token_file: Path | None = None
    private_folder: Path | None = None
    try:
        try:
            if args.token_file:
                token_file = Path(args.token_file).expanduser().absolute()
            else:
                token_file, private_folder = default_token_file(os.environ)
            write_token_file(token_file, token)
        except OSError as exc:
            shown = args.token_file or token_file or "the token file"
            raise UsageError("TokenFile", f"cannot write {shown}: {exc.strerror or exc}") from None
        _announce(server, roles=args.roles or [], token=token if args.print_token else None, token_file=token_file)
        _stop_on_sigterm(server)
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        if token_file is not None:
            _remove_token_file(token_file, token)
        if private_folder is not None:
            with contextlib.suppress(OSError):
                private_folder.rmdir()
    return ExitCode.OK


def _remove_token_file(path: Path, token: str) -> None:
    """Remove the token file on exit, unless another sidecar has since written its own there."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == token.encode("ascii"):
            path.unlink()


def _announce(server: Any, *, roles: Sequence[str], token: str | None, token_file: Path) -> None:
    """First stdout line: JSON for programs. Then the variables for people, ready to paste.

    The token itself only with ``--print-token``: stdout is a container's log stream."""
    ready: dict[str, Any] = {
        "event": "ready",
        "host": "127.0.0.1",
        "port": server.port,
        "url": f"http://127.0.0.1:{server.port}/roles/",
        "roles": list(roles),
        "token_file": str(token_file),
        "pid": os.getpid(),
    }
    if token is not None:
        ready["token"] = token  # stdout only, never stderr
    lines = [json.dumps(ready)]
    for role in roles or ["ROLE"]:
        lines.append(f"# a service that should act as {role} sets:")
        lines.append(f"export AWS_CONTAINER_CREDENTIALS_FULL_URI={server.role_url(role)}")
        lines.append(f"export AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={shlex.quote(str(token_file))}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _stop_on_sigterm(server: Any) -> None:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it must not run on the serving thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)


# --- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CredvendError as exc:
        sys.stderr.write(f"{PROG}: error: {exc.line()}\n")
        return int(exc.exit_code)
    except BrokenPipeError:  # `credvend get ... | head`: not an error worth a traceback
        sys.stderr.close()
        return ExitCode.OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: one line, no traceback (it could show values), exit 1
        sys.stderr.write(f"{PROG}: error: InternalError: {type(exc).__name__} (please report)\n")
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
