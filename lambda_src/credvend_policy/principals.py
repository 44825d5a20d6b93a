"""How a SigV4 identity matches a caller's ``iam_principals``.

API Gateway reports a role session as ``arn:aws:sts::ACCT:assumed-role/NAME/SESSION``;
the policy lists the role as ``arn:aws:iam::ACCT:role/[PATH/]NAME``. Both reduce to the
same key. IAM users match by their full ARN.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ROLE = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):iam::(?P<acct>\d{12}):role/(?:[\w+=,.@/-]*/)?(?P<name>[\w+=,.@-]{1,64})$", re.ASCII
)
_SESSION = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):sts::(?P<acct>\d{12}):assumed-role/(?P<name>[\w+=,.@-]{1,64})/[\w+=,.@-]{1,64}$",
    re.ASCII,
)
_USER = re.compile(
    r"^arn:(?P<part>aws[a-z-]*):iam::(?P<acct>\d{12}):user/(?P<name>(?:[\w+=,.@/-]*/)?[\w+=,.@-]{1,64})$", re.ASCII
)

ROLE_ARN_PATTERN = _ROLE


class PrincipalKey(NamedTuple):
    partition: str
    account: str
    kind: str  # "role" or "user"
    name: str


def principal_key(arn: str) -> PrincipalKey | None:
    """The identity key of a principal ARN, or None if it is not one credvend accepts."""
    for kind, pattern in (("role", _ROLE), ("role", _SESSION), ("user", _USER)):
        match = pattern.match(arn)
        if match:
            return PrincipalKey(match["part"], match["acct"], kind, match["name"])
    return None


def is_role_arn(arn: str) -> bool:
    return _ROLE.match(arn) is not None
