"""A local credvend left running: LocalStack, the stack deployed from a policy file, a caller.

``python -m credvend_local up|env|down`` (``make local`` / ``make local-stop``) and ``make demo``
share this code path. ``up`` starts LocalStack (installing it if needed), deploys the real stack
with ``cdk deploy``, creates the caller's first IAM principal in LocalStack (a role, or a user)
and opens a session of it; the caller's credentials come back as shell ``export`` lines so that
``credvend get ROLE`` works as that caller. What ``env`` needs later (the API URL, the policy
file) is kept in ``.cache/local/<name>/state.json``, never a secret.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from botocore.credentials import Credentials

from credvend_local import deploy as cdk_deploy
from credvend_local import identities, launcher

DEFAULT_NAME = "local"
DEFAULT_POLICY = cdk_deploy.REPO_ROOT / "policy.yaml"
# What a fresh AssumeRole gives on AWS (and LocalStack): the printed credentials expire after it.
SESSION_SECONDS = 3600
SESSION_NAME = "credvend-local"


def progress(message: str) -> None:
    print(f"[credvend-local] {message}", file=sys.stderr, flush=True)


def state_dir(name: str) -> Path:
    return cdk_deploy.REPO_ROOT / ".cache" / "local" / name


@dataclass(frozen=True)
class LocalCredvend:
    """A running local credvend: where LocalStack and the API are, and which policy it runs."""

    name: str
    endpoint: str  # LocalStack: http://127.0.0.1:PORT
    api_url: str  # the stage URL callers use: CREDVEND_ENDPOINT
    region: str
    policy_file: str
    outputs: dict[str, str]

    def save(self) -> None:
        folder = state_dir(self.name)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state.json").write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class Caller:
    """A caller of the policy file and the session credvend sees it sign with."""

    name: str
    principal_arn: str
    credentials: Credentials
    expires_in_seconds: int | None  # None: a user's long-term access key


def load(name: str = DEFAULT_NAME) -> LocalCredvend | None:
    """The local credvend running under ``name`` (its LocalStack is up and it was deployed)."""
    try:
        state = json.loads((state_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    instance = launcher.status(name)
    if instance is None or instance.endpoint != state.get("endpoint"):
        return None  # LocalStack stopped (its state went with it) or restarted on another port
    return LocalCredvend(**state)


def start(name: str = DEFAULT_NAME) -> launcher.LocalStack:
    """Start (or reuse) LocalStack ``name``, installing it first if needed; left running."""
    return launcher.start(name=name, tie_to_parent=False, stop_at_exit=False)


def deploy(instance: launcher.LocalStack, policy_file: Path) -> LocalCredvend:
    """``cdk bootstrap`` + ``cdk deploy`` the stack from ``policy_file`` into ``instance``."""
    policy_file = policy_file.resolve()
    deployment = cdk_deploy.deploy(instance.endpoint, policy_file=policy_file, workdir=state_dir(instance.name))
    local = LocalCredvend(
        name=instance.name,
        endpoint=instance.endpoint,
        api_url=deployment.api_url,
        region=instance.region,
        policy_file=str(policy_file),
        outputs=deployment.outputs,
    )
    local.save()
    return local


def up(name: str = DEFAULT_NAME, policy_file: Path = DEFAULT_POLICY) -> LocalCredvend:
    """Start (or reuse) LocalStack ``name`` and deploy the stack from ``policy_file`` into it."""
    first_caller(policy_file, None)  # a policy with no usable caller fails before the slow part
    started = time.monotonic()
    progress(f"starting LocalStack '{name}' (installs it on first use, about a minute)")
    instance = start(name)
    progress(f"LocalStack is up at {instance.endpoint}; cdk bootstrap + cdk deploy with {policy_file}")
    local = deploy(instance, policy_file)
    progress(f"ready in {time.monotonic() - started:.0f} s; credvend API {local.api_url}")
    return local


def down(name: str = DEFAULT_NAME) -> bool:
    """Stop LocalStack ``name`` and forget its deployment. True if it was running."""
    was_running = launcher.stop(name)
    (state_dir(name) / "state.json").unlink(missing_ok=True)
    return was_running


def first_caller(policy_file: Path, caller: str | None) -> tuple[str, str]:
    """(caller name, its first IAM principal ARN): ``caller``, or the file's first caller with one."""
    from credvend_policy.loader import load_policy  # the project's own validation and messages

    policy = load_policy(policy_file)
    with_principals = {name: list(getattr(spec, "iam_principals", None) or ()) for name, spec in policy.callers.items()}
    if caller is None:
        caller = next((name for name, arns in with_principals.items() if arns), None)
        if caller is None:
            raise SystemExit(f"{policy_file}: no caller with iam_principals to act as")
    elif caller not in with_principals:
        raise SystemExit(f"{policy_file}: no caller {caller!r} (callers: {', '.join(with_principals) or 'none'})")
    elif not with_principals[caller]:
        raise SystemExit(f"{policy_file}: caller {caller!r} has no iam_principals to sign with")
    return caller, with_principals[caller][0]


def open_caller_session(local: LocalCredvend, caller: str | None = None, session_name: str = SESSION_NAME) -> Caller:
    """Create the caller's first IAM principal in LocalStack (if needed) and credentials of it."""
    name, arn = first_caller(Path(local.policy_file), caller)
    credentials = identities.create_principal_credentials(
        local.endpoint, arn, session_name=session_name, duration_seconds=SESSION_SECONDS
    )
    expires = None if credentials.token is None else SESSION_SECONDS
    return Caller(name=name, principal_arn=arn, credentials=credentials, expires_in_seconds=expires)


def caller_environment(local: LocalCredvend, caller: Caller) -> dict[str, str]:
    """The variables that make ``credvend`` (and any AWS SDK) act as ``caller`` against ``local``."""
    values = {
        "CREDVEND_ENDPOINT": local.api_url,
        "AWS_ENDPOINT_URL": local.endpoint,
        "AWS_REGION": local.region,
        "AWS_DEFAULT_REGION": local.region,
        "AWS_ACCESS_KEY_ID": caller.credentials.access_key,
        "AWS_SECRET_ACCESS_KEY": caller.credentials.secret_key,
    }
    if caller.credentials.token is not None:
        values["AWS_SESSION_TOKEN"] = caller.credentials.token
    return values


def export_lines(local: LocalCredvend, caller: Caller) -> list[str]:
    """Shell lines to ``eval``: ``unset`` first, so the last lines are all ``export``s."""
    values = caller_environment(local, caller)
    # A profile must not win over these keys (credvend's --profile/CREDVEND_PROFILE would),
    # and an IAM user signs without a token.
    unset = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "CREDVEND_PROFILE"]
    if "AWS_SESSION_TOKEN" not in values:
        unset.append("AWS_SESSION_TOKEN")
    lines = [f"unset {' '.join(unset)}"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in values.items()]
    return lines


def describe_caller(caller: Caller) -> str:
    lifetime = (
        f"a session that expires in {caller.expires_in_seconds // 60} minutes; "
        "`python -m credvend_local env` issues a fresh one"
        if caller.expires_in_seconds
        else "a long-term access key of the user"
    )
    return f"acting as caller {caller.name!r}: {caller.principal_arn} ({lifetime})"
