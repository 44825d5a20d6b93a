"""Generated policy files of any size, for scale tests and benchmarks.

``generate_policy(callers=1000, roles=200)`` is what a platform team with hundreds of
services writes: most roles created by the stack, some in other accounts, callers spread
over a few accounts, each granted a handful of roles (and every role granted to someone).

    python -m credvend_local.policy_gen --callers 1000 --roles 200 > big.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

CALLER_ACCOUNTS = ("000000000000", "111111111111", "222222222222", "333333333333")
EXTERNAL_ACCOUNT = "210987654321"


def caller_name(index: int) -> str:
    return f"svc-{index:04d}"


def role_alias(index: int) -> str:
    return f"role-{index:03d}"


def generate_policy(
    *,
    callers: int,
    roles: int,
    grants_per_caller: int = 3,
    external_every: int = 10,
    caller_account: str | None = None,
) -> dict[str, Any]:
    """A valid policy document (as a dict) with ``callers`` callers and ``roles`` roles.

    Every ``external_every``-th role is an ``arn:`` role in another account; the rest are
    created. Caller ``i`` is role ``svc-i-task`` in one of ``CALLER_ACCOUNTS`` (or in
    ``caller_account`` for every caller) and is granted roles ``i, i+1, ...`` (mod ``roles``).
    """
    if callers < 1 or roles < 1:
        raise ValueError("a policy needs at least one caller and one role")
    role_specs: dict[str, Any] = {}
    for index in range(roles):
        alias = role_alias(index)
        if external_every and index % external_every == external_every - 1:
            role_specs[alias] = {
                "arn": f"arn:aws:iam::{EXTERNAL_ACCOUNT}:role/Partner{index:03d}",
                "max_session_duration": 3600,
            }
        else:
            role_specs[alias] = {"create": True, "max_session_duration": 43200 if index % 2 == 0 else 14400}
    caller_specs: dict[str, Any] = {}
    for index in range(callers):
        account = caller_account or CALLER_ACCOUNTS[index % len(CALLER_ACCOUNTS)]
        aliases = sorted({role_alias((index + step) % roles) for step in range(min(grants_per_caller, roles))})
        caller_specs[caller_name(index)] = {
            "iam_principals": [f"arn:aws:iam::{account}:role/{caller_name(index)}-task"],
            "grants": [{"role": alias, "max_duration_seconds": 43200} for alias in aliases],
        }
    return {
        "version": 1,
        "defaults": {"duration_seconds": 3600, "session_name": "{caller}"},
        "roles": role_specs,
        "callers": caller_specs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, required=True)
    parser.add_argument("--roles", type=int, required=True)
    parser.add_argument("--grants-per-caller", type=int, default=3)
    parser.add_argument("--caller-account", help="put every caller in this account (e.g. LocalStack's)")
    args = parser.parse_args(argv)
    document = generate_policy(
        callers=args.callers,
        roles=args.roles,
        grants_per_caller=args.grants_per_caller,
        caller_account=args.caller_account,
    )
    # JSON is YAML too; the policy loader accepts either.
    json.dump(document, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
