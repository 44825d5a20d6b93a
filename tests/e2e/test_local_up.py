"""`python -m credvend_local up` as a service team runs it: eval its output, `credvend get`, `down`.

Its own LocalStack (its own instance name), the repo's default policy.yaml (what `make local`
deploys), one deploy. The printed credentials are the caller's: they are never shown in a
failure message, only the progress on stderr is.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from credvend_local import launcher

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
CREDVEND = Path(sys.executable).with_name("credvend")


def _run(args: list[str], *, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _clean_env() -> dict[str, str]:
    """The test's environment without AWS settings: the export lines must be enough."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CREDVEND_"))}


def _apply_exports(stdout: str, env: dict[str, str]) -> dict[str, str]:
    """What `eval "$(... up)"` does to the environment, by running the lines in a real shell."""
    script = f"{stdout}\nenv -0"
    dumped = subprocess.run(["bash", "-c", script], env=env, capture_output=True, check=True, timeout=30).stdout
    return dict(item.split("=", 1) for item in dumped.decode().split("\0") if "=" in item)


@pytest.fixture(scope="module")
def name() -> Iterator[str]:
    name = f"local-test-{uuid.uuid4().hex[:6]}"
    yield name
    # whatever happened, no LocalStack outlives the test
    _run([sys.executable, "-m", "credvend_local", "down", "--name", name], env=_clean_env(), timeout=60)
    launcher.remove_instance(name)


SERVICE_TEST = f"""
import json, os, subprocess
from credvend_local.fixtures import local_credvend  # noqa: F401

def test_my_service_gets_credentials(local_credvend):
    assert local_credvend.caller.name == "billing-api"
    env = {{**os.environ, **local_credvend.env}}
    out = subprocess.run([{str(CREDVEND)!r}, "get", "reports-reader"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    caller = json.loads(out.stdout)["Grant"]["Caller"]  # not in the assert: its output holds secrets
    assert caller == "billing-api"
"""


def test_up_eval_get_env_down(name: str, tmp_path: Path) -> None:
    base = _clean_env()
    up = _run([sys.executable, "-m", "credvend_local", "up", "--name", name], env=base)
    assert up.returncode == 0, f"up failed (exit {up.returncode}); stderr:\n{up.stderr[-3000:]}"

    lines = up.stdout.strip().splitlines()
    exported = {line.split()[1].split("=", 1)[0] for line in lines if line.startswith("export ")}
    assert {
        "CREDVEND_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    } <= exported
    assert lines[-1].startswith("export "), "the last line on stdout is an export line"
    assert all(shlex.split(line)[0] in ("export", "unset") for line in lines), "stdout holds only shell lines"
    assert "acting as caller 'billing-api'" in up.stderr  # policy.yaml's first caller

    env = _apply_exports(up.stdout, base)
    identity = _run(
        [sys.executable, "-c", "import boto3; print(boto3.client('sts').get_caller_identity()['Arn'])"], env=env
    )
    assert identity.stdout.strip() == "arn:aws:sts::123456789012:assumed-role/billing-api-task/credvend-local"

    got = _run([str(CREDVEND), "get", "reports-reader"], env=env, timeout=120)
    assert got.returncode == 0, f"credvend get failed: {got.stderr[-2000:]}"
    vended = json.loads(got.stdout)
    has_key = bool(vended["Credentials"]["AccessKeyId"])  # not inside an assert: it would print the secrets
    grant = vended["Grant"]
    assert has_key
    assert grant["Caller"] == "billing-api"

    refused = _run([str(CREDVEND), "get", "partner-writer"], env=env, timeout=120)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr  # not granted to billing-api

    # `env` issues a fresh session of the same caller; the new one works too.
    again = _run([sys.executable, "-m", "credvend_local", "env", "--name", name], env=base, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    env2 = _apply_exports(again.stdout, base)
    assert env2["AWS_ACCESS_KEY_ID"] != env["AWS_ACCESS_KEY_ID"]
    assert env2["CREDVEND_ENDPOINT"] == env["CREDVEND_ENDPOINT"]
    assert _run([str(CREDVEND), "get", "reports-reader"], env=env2, timeout=120).returncode == 0

    # A service team's own test, with the pytest fixture attached to the running local credvend.
    service_test = tmp_path / "test_my_service.py"
    service_test.write_text(SERVICE_TEST)
    inner = _run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull, str(service_test)],
        env={**base, "CREDVEND_LOCAL_NAME": name, "PYTHONPATH": str(REPO_ROOT)},
        timeout=300,
    )
    assert inner.returncode == 0, inner.stdout[-3000:]

    down = _run([sys.executable, "-m", "credvend_local", "down", "--name", name], env=base, timeout=60)
    assert down.returncode == 0 and "stopped" in down.stderr
    assert launcher.status(name) is None
    gone = _run([sys.executable, "-m", "credvend_local", "env", "--name", name], env=base, timeout=60)
    assert gone.returncode == 1 and "no local credvend" in gone.stderr
