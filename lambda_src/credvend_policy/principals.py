"""ARNs: how a SigV4 identity matches a caller's ``iam_principals``, and the one ARN parser.

API Gateway reports a role session as ``arn:aws:sts::ACCT:assumed-role/NAME/SESSION``;
the policy lists the role as ``arn:aws:iam::ACCT:role/[PATH/]NAME``. Both reduce to the
same key. IAM users match by their full ARN. Matching is exact; only the policy's own
consistency checks compare names as IAM does (ignoring case, see ``PrincipalKey.as_iam_sees_it``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_PARTITION = r"aws[a-z-]*"  # aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b...
# Every pattern below is used with ``fullmatch``, never ``match`` with ``$``: ``$`` also matches
# before a trailing newline, and a YAML block scalar (``|``) ends with one.
_ARN = re.compile(
    rf"arn:(?P<partition>{_PARTITION}):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d{{12}}):"
    r"(?P<resource>\S+)",
    re.ASCII,
)
_ROLE = re.compile(
    rf"arn:(?P<part>{_PARTITION}):iam::(?P<acct>\d{{12}}):role/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]{{1,64}})",
    re.ASCII,
)
_SESSION = re.compile(
    rf"arn:(?P<part>{_PARTITION}):sts::(?P<acct>\d{{12}}):assumed-role/(?P<name>[\w+=,.@-]{{1,64}})/[\w+=,.@-]{{1,64}}",
    re.ASCII,
)
_USER = re.compile(
    rf"arn:(?P<part>{_PARTITION}):iam::(?P<acct>\d{{12}}):user/(?P<name>(?:[\w+=,.@/-]*/)?[\w+=,.@-]{{1,64}})",
    re.ASCII,
)


class Arn(NamedTuple):
    """An ARN that names an account (``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``)."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn | None:
    match = _ARN.fullmatch(text)
    return Arn(*match.group("partition", "service", "region", "account", "resource")) if match else None


def account_of(arn: str) -> str | None:
    parsed = parse_arn(arn)
    return parsed.account if parsed else None


def is_identity_arn(text: str) -> bool:
    """An IAM or STS identity ARN, of any kind (role session, user, root, federated user...)."""
    parsed = parse_arn(text)
    return parsed is not None and parsed.service in ("iam", "sts") and not parsed.region


def is_long_term_identity(arn: str) -> bool:
    """An IAM user or the account root: the identities whose credentials are long-term keys."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "iam":
        return False
    return parsed.resource == "root" or parsed.resource.startswith("user/")


class PrincipalKey(NamedTuple):
    partition: str
    account: str
    kind: str  # "role" or "user"
    name: str

    def as_iam_sees_it(self) -> PrincipalKey:
        """The key of the IAM entity itself: role and user names are unique in an account
        ignoring case (and a user's path), so ``role/Billing`` and ``role/billing`` are one role."""
        return self._replace(name=self.name.rsplit("/", 1)[-1].lower())


def principal_key(arn: str) -> PrincipalKey | None:
    """The identity key of a principal ARN, or None if it is not one credvend accepts."""
    for kind, pattern in (("role", _ROLE), ("role", _SESSION), ("user", _USER)):
        match = pattern.fullmatch(arn)
        if match:
            return PrincipalKey(match["part"], match["acct"], kind, match["name"])
    return None


def is_role_arn(arn: str) -> bool:
    return _ROLE.fullmatch(arn) is not None


def role_arn_of_session(arn: str) -> str | None:
    """``arn:aws:iam::ACCT:role/NAME`` for a role-session ARN
    ``arn:aws:sts::ACCT:assumed-role/NAME/SESSION``; None for anything else."""
    match = _SESSION.fullmatch(arn)
    return f"arn:{match['part']}:iam::{match['acct']}:role/{match['name']}" if match else None
