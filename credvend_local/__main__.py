"""A local credvend for your own integration tests: ``python -m credvend_local up|env|down``.

    eval "$(python -m credvend_local up [--policy FILE] [--caller NAME] [--name local])"
    credvend get reports-reader                 # works as that caller
    eval "$(python -m credvend_local env [--caller NAME])"   # a fresh session (they last 1 hour)
    python -m credvend_local down

Progress goes to stderr; the last lines on stdout are shell ``export`` lines: CREDVEND_ENDPOINT,
AWS_ENDPOINT_URL, AWS_REGION and the caller's AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN. ``make local`` / ``make local-stop`` run these with POLICY= and CALLER=.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from credvend_local import local


def _print_exports(instance: local.LocalCredvend, caller_name: str | None) -> None:
    caller = local.open_caller_session(instance, caller_name)
    local.progress(local.describe_caller(caller))
    local.progress(f'credvend endpoint {instance.api_url}; e.g. `credvend get ROLE` after eval "$(...)"')
    print("\n".join(local.export_lines(instance, caller)), flush=True)


def main(argv: list[str] | None = None) -> int:
    from credvend_policy.loader import PolicyError

    try:
        return _main(argv)
    except PolicyError as exc:  # a policy that does not load: its own message, with the paths
        local.progress(str(exc))
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m credvend_local", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start LocalStack, deploy the stack, print the caller's export lines")
    up.add_argument("--policy", type=Path, default=local.DEFAULT_POLICY, help="policy file (default: policy.yaml)")
    env = commands.add_parser("env", help="print export lines with a fresh session of a caller")
    down = commands.add_parser("down", help="stop it")
    for sub in (up, env):
        sub.add_argument("--caller", help="caller in the policy file (default: the first one)")
    for sub in (up, env, down):
        sub.add_argument("--name", default=local.DEFAULT_NAME, help="instance name (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.command == "down":
        local.progress("stopped" if local.down(args.name) else f"no local credvend '{args.name}' was running")
        return 0
    if args.command == "up":
        if not args.policy.is_file():
            parser.error(f"no policy file {args.policy}")
        local.first_caller(args.policy, args.caller)  # a wrong --caller fails before the slow part
        instance = local.up(args.name, args.policy)
    else:
        found = local.load(args.name)
        if found is None:
            local.progress(f"no local credvend '{args.name}' is running: python -m credvend_local up")
            return 1
        instance = found
    _print_exports(instance, args.caller)
    return 0


if __name__ == "__main__":
    sys.exit(main())
