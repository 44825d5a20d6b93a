"""Deploy the real CDK app into a running LocalStack with the project's own CDK CLI.

Used by the end-to-end fixtures and by ``make demo``; nothing here is LocalStack-specific
except the endpoint variables (``cdk bootstrap`` / ``cdk deploy`` are the ones users run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CDK_CLI = REPO_ROOT / "node_modules" / ".bin" / "cdk"
LOCALSTACK_ACCOUNT = "000000000000"
REGION = "us-east-1"
CDK_TIMEOUT_SECONDS = 600  # bootstrap and deploy take ~15 s each here; a hang must fail, not stall
# The stack's ApiUrl output names AWS's host; LocalStack serves the same API under this path.
_STAGE_URL = re.compile(r"^https://(?P<api_id>[a-z0-9]+)\.execute-api\.[^/]+/(?P<stage>[^/]+)/?$")


@dataclass(frozen=True)
class Deployment:
    outputs: dict[str, str]
    api_url: str  # http://127.0.0.1:PORT/_aws/execute-api/<id>/<stage>
    seconds: float


def admin_environment(endpoint: str) -> dict[str, str]:
    """Environment for AWS tools acting as LocalStack's account root (the deployer)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        CDK_DEFAULT_ACCOUNT=LOCALSTACK_ACCOUNT,
        CDK_DEFAULT_REGION=REGION,
        CDK_DISABLE_VERSION_CHECK="1",  # the pinned CLI; no look-up of newer releases
    )
    return env


def localstack_api_url(stage_url: str, endpoint: str) -> str:
    match = _STAGE_URL.match(stage_url)
    if match is None:
        raise ValueError(f"unexpected ApiUrl output {stage_url!r}")
    return f"{endpoint.rstrip('/')}/_aws/execute-api/{match['api_id']}/{match['stage']}"


def _cdk(args: list[str], *, env: dict[str, str], log: Path, echo: bool) -> None:
    with log.open("a") as sink:
        sink.write(f"\n$ cdk {' '.join(args)}\n")
        sink.flush()
        proc = subprocess.run(
            [str(CDK_CLI), *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=CDK_TIMEOUT_SECONDS,
        )
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise RuntimeError(f"cdk {args[0]} failed (exit {proc.returncode}); log {log}:\n{tail}")
    if echo:
        print(f"    cdk {args[0]} ok", file=sys.stderr)


def deploy(
    endpoint: str,
    *,
    policy_file: Path,
    workdir: Path,
    echo: bool = False,
    context: Mapping[str, str] | None = None,
) -> Deployment:
    """``cdk bootstrap`` + ``cdk deploy`` the app with ``policy_file``; returns the outputs.

    ``context``: more ``-c key=value`` settings (e.g. ``stack_name`` for a second stack
    beside the first in the same LocalStack; see docs/deploy.md for the keys).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    env = admin_environment(endpoint)
    outputs_file = workdir / "outputs.json"
    log = workdir / "cdk.log"
    settings = {"policy": str(policy_file), "architecture": "x86_64", **(context or {})}
    context_args = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    context_args += ["--output", str(workdir / "cdk.out")]
    started = time.monotonic()
    _cdk(["bootstrap", f"aws://{LOCALSTACK_ACCOUNT}/{REGION}", *context_args], env=env, log=log, echo=echo)
    _cdk(
        ["deploy", "--all", "--require-approval", "never", "--outputs-file", str(outputs_file), *context_args],
        env=env,
        log=log,
        echo=echo,
    )
    seconds = time.monotonic() - started
    per_stack = json.loads(outputs_file.read_text())
    outputs = {key: value for stack in per_stack.values() for key, value in stack.items()}
    return Deployment(outputs=outputs, api_url=localstack_api_url(outputs["ApiUrl"], endpoint), seconds=seconds)
