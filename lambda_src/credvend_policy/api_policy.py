"""The REST API's resource policy, built from the policy file: bounded whatever the callers.

One implementation for the CDK stack (infra/components/vending_api.py) and
``credvend policy check``. API Gateway caps a resource policy at 8,192 characters; listing
every caller principal (as credvend once did) broke that from about 60 callers on. So the
document names ACCOUNTS, never principals (CONTRACT §5): the function authorizes each
caller by the policy file anyway, and a principal in a listed account that is no caller
gets the function's 403 ``AccessDenied``.

- ``CallerAccounts``: Allow ``execute-api:Invoke`` on the IAM routes to the accounts of the
  policy's ``iam_principals`` (their root ARNs: the whole account, as each account's own
  IAM then decides), or, with an organization id, to any principal of that organization.
- ``OnlyCallerAccounts``: an explicit Deny on the IAM routes for principals outside those
  accounts (or that organization), so no later Allow, in this policy or in a caller's own
  account, can open the API wider.
- ``PublicRoutes``: anonymous Allow on the routes given as public (the OIDC issuer's
  discovery routes, token-authenticated OIDC routes), which the Deny leaves alone.

A route is ``(method, path)``, the path as API Gateway's resource path with ``{param}``
parts (or ``*``): ``("GET", "/credentials/{role}")``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from credvend_policy.principals import parse_arn

Route = tuple[str, str]

# The IAM routes of CONTRACT §2, for callers without a stack at hand (``policy check``).
IAM_ROUTES: tuple[Route, ...] = (("POST", "/credentials"), ("GET", "/credentials/{role}"))
# The token-authenticated routes of CONTRACT §10: public at the gateway, the function verifies the token.
OIDC_ROUTES: tuple[Route, ...] = (("POST", "/oidc/credentials"), ("GET", "/oidc/credentials/{role}"))
# The accounts one resource policy can admit within API Gateway's 8,192 characters, with
# room to spare for public routes: each account costs ~50 characters (its root ARN in the
# Allow, its id in the Deny). Beyond this, give the app an `organization_id`.
MAX_CALLER_ACCOUNTS = 100

_ORG_ID = re.compile(r"o-[a-z0-9]{10,32}")  # fullmatch: `$` would take a trailing newline


def route_resource(route: Route) -> str:
    """``("GET", "/credentials/{role}")`` -> ``execute-api:/*/GET/credentials/*`` (any stage)."""
    method, path = route
    parts = ["*" if part.startswith("{") and part.endswith("}") else part for part in path.strip("/").split("/")]
    method = "*" if method.upper() == "ANY" else method.upper()
    return "execute-api:/*/" + method + ("/" + "/".join(parts) if any(parts) else "/")


def caller_accounts(principal_arns: Iterable[str]) -> list[tuple[str, str]]:
    """(partition, account) of each principal, de-duplicated and sorted."""
    accounts: set[tuple[str, str]] = set()
    for arn in principal_arns:
        parsed = parse_arn(arn)
        if parsed is None:  # the policy's principals are validated ARNs
            raise ValueError(f"not an ARN: {arn!r}")
        accounts.add((parsed.partition, parsed.account))
    return sorted(accounts, key=lambda item: (item[1], item[0]))


def is_organization_id(value: str) -> bool:
    return _ORG_ID.fullmatch(value) is not None


def api_resource_policy(
    principal_arns: Iterable[str],
    *,
    iam_routes: Sequence[Route] = IAM_ROUTES,
    public_routes: Sequence[Route] = (),
    organization_id: str | None = None,
) -> dict[str, Any] | None:
    """The resource policy document, or None when nobody may invoke the API at all."""
    if organization_id is not None and not is_organization_id(organization_id):
        raise ValueError(f"not an AWS Organizations id (o-...): {organization_id!r}")
    accounts = caller_accounts(principal_arns)
    public = list(dict.fromkeys(route_resource(route) for route in public_routes))
    protected = [resource for resource in dict.fromkeys(map(route_resource, iam_routes)) if resource not in public]
    statements: list[dict[str, Any]] = []
    if protected and (accounts or organization_id):
        if organization_id is not None:
            allow_principal: Any = "*"
            allow_condition: dict[str, Any] | None = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
            deny_condition: dict[str, Any] = {"StringNotEquals": {"aws:PrincipalOrgID": organization_id}}
        else:
            allow_principal = {"AWS": [f"arn:{partition}:iam::{account}:root" for partition, account in accounts]}
            allow_condition = None
            deny_condition = {"StringNotEquals": {"aws:PrincipalAccount": sorted({a for _, a in accounts})}}
        allow: dict[str, Any] = {
            "Sid": "CallerAccounts",
            "Effect": "Allow",
            "Principal": allow_principal,
            "Action": "execute-api:Invoke",
            "Resource": protected,
        }
        if allow_condition:
            allow["Condition"] = allow_condition
        statements.append(allow)
        statements.append(
            {
                "Sid": "OnlyCallerAccounts",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": protected,
                "Condition": deny_condition,
            }
        )
    if protected and public and not statements:
        # No SigV4 caller at all (OIDC callers only): the IAM routes stay shut to everyone.
        statements.append(
            {
                "Sid": "NoCallerAccounts",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": protected,
            }
        )
    if public:
        statements.append(
            {
                "Sid": "PublicRoutes",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": public,
            }
        )
    if not statements:
        return None
    return {"Version": "2012-10-17", "Statement": statements}
