"""The function asset: built from the policy and pinned wheels, cached by a hash of its
inputs, pruned, and still runnable on its own (boto3 aside, as on Lambda)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from credvend_policy import policy_as_json
from infra import bundling

REPO_ROOT = Path(__file__).resolve().parents[2]

SMOKE = r"""
import json, sys
from credvend.handler import handler
class Ctx:
    function_name = "credvend"; function_version = "$LATEST"; memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:credvend"; aws_request_id = "r"
def event(body, arn):
    return {"resource": "/credentials", "path": "/credentials", "httpMethod": "POST", "headers": {},
            "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "isBase64Encoded": False, "body": body,
            "requestContext": {"requestId": "r", "identity": {"userArn": arn}}}
stranger = "arn:aws:sts::123456789012:assumed-role/stranger/s"
codes = [handler(event(json.dumps({"role": "reports-reader"}), stranger), Ctx())["statusCode"],
         handler(event("{bad", stranger), Ctx())["statusCode"],
         handler(event(json.dumps({"role": "x"}), None), Ctx())["statusCode"]]
import credvend_policy, credvend.adapters.sts  # noqa: the adapter imports botocore from the runtime
sys.stderr.write(json.dumps(codes))
"""


@pytest.fixture(scope="module")
def bundle() -> Path:
    try:
        return bundling.build_function_bundle(policy_file=REPO_ROOT / "policy.yaml", architecture="x86_64")
    except bundling.BundlingError as exc:  # pragma: no cover - no wheel cache and no index
        pytest.skip(f"cannot build the asset here: {str(exc)[:200]}")


def test_layout(bundle: Path) -> None:
    assert (bundle / "policy.yaml").read_bytes() == (REPO_ROOT / "policy.yaml").read_bytes()
    # the copy the function reads: the same document as JSON (policy_as_json checks it round-trips)
    assert (bundle / "policy.json").read_text() == policy_as_json(REPO_ROOT / "policy.yaml")
    assert (bundle / "credvend" / "handler.py").is_file()
    assert (bundle / "credvend_policy" / "loader.py").is_file()
    assert (bundle / "aws_lambda_powertools").is_dir() and (bundle / "pydantic_core").is_dir()
    for absent in ("boto3", "botocore", "aws_xray_sdk", "pydantic/v1", "aws_lambda_powertools/utilities/idempotency"):
        assert not (bundle / absent).exists(), absent
    assert not list(bundle.glob("*.dist-info/RECORD"))
    assert list((bundle / "credvend").glob("__pycache__/handler.cpython-313.pyc"))


def test_cached_by_inputs(bundle: Path, tmp_path: Path) -> None:
    again = bundling.build_function_bundle(policy_file=REPO_ROOT / "policy.yaml", architecture="x86_64")
    assert again == bundle
    other_policy = tmp_path / "policy.yaml"
    other_policy.write_text((REPO_ROOT / "policy.yaml").read_text() + "\n# changed\n")
    assert bundling.inputs_hash(policy_file=other_policy, architecture="x86_64") != bundle.name
    assert bundling.inputs_hash(policy_file=REPO_ROOT / "policy.yaml", architecture="arm64") != bundle.name
    copy = bundling.build_function_bundle(
        policy_file=REPO_ROOT / "policy.yaml", architecture="x86_64", out_dir=tmp_path / "asset"
    )
    assert (copy / "policy.yaml").is_file()


def _asset_env(bundle: Path, tmp_path: Path) -> dict[str, str]:
    """Only the asset and a boto3 on the path, as on Lambda."""
    import boto3

    site = Path(boto3.__file__).resolve().parents[1]
    runtime_dir = tmp_path / "runtime"
    if not runtime_dir.is_dir():
        runtime_dir.mkdir()
        for name in ("boto3", "botocore", "jmespath", "dateutil", "six.py", "s3transfer", "urllib3"):
            (runtime_dir / name).symlink_to(site / name)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "PYTHONPATH": f"{bundle}{os.pathsep}{runtime_dir}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
    }


def test_asset_runs_on_its_own(bundle: Path, tmp_path: Path) -> None:
    env = _asset_env(bundle, tmp_path)
    result = subprocess.run(
        [sys.executable, "-S", "-c", SMOKE], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stderr.strip().splitlines()[-1]) == [403, 400, 401]


LAZY_CHECK = r"""
import importlib, json, sys
from credvend.handler import handler, runtime
runtime().service._sts.client  # the policy and the STS client, built as on the first request
loaded = sorted(m for m in ("yaml", "asyncio", "boto3", "s3transfer", "aws_lambda_powertools.event_handler.appsync",
                            "aws_lambda_powertools.utilities.data_classes.kinesis_firehose_event") if m in sys.modules)
exported = {}
for name in ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes"):
    package = importlib.import_module(name)
    exported[name] = all(getattr(package, attr) is not None for attr in package.__all__)
from types import ModuleType
from aws_lambda_powertools.utilities.data_classes import event_source  # a function named like its module
sys.stderr.write(json.dumps({"loaded": loaded, "exported": exported,
                             "event_source_is_function": not isinstance(event_source, ModuleType)}))
"""


def test_lazy_inits_load_less_and_export_the_same(bundle: Path, tmp_path: Path) -> None:
    init = (bundle / "aws_lambda_powertools" / "event_handler" / "__init__.py").read_text()
    assert "Rewritten by credvend's bundler" in init
    result = subprocess.run(
        [sys.executable, "-S", "-c", LAZY_CHECK],
        env=_asset_env(bundle, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stderr.strip().splitlines()[-1])
    assert report == {
        # no YAML parser, no boto3 layer over botocore, no AppSync/asyncio, no unused event classes
        "loaded": [],
        "exported": {"aws_lambda_powertools.event_handler": True, "aws_lambda_powertools.utilities.data_classes": True},
        "event_source_is_function": True,
    }


def test_lazy_init_source() -> None:
    source = '''"""Doc."""
from pkg.a import A, B as Bee
from .event_source import event_source

__all__ = ["A", "Bee", "event_source"]
'''
    lazy = bundling.lazy_init_source(source, package="pkg", submodules={"a", "event_source"})
    compile(lazy, "pkg/__init__.py", "exec")  # valid Python
    assert "from pkg.event_source import event_source as event_source" in lazy  # shadowed by its module: eager
    assert "'A': ('pkg.a', 'A')" in lazy and "'Bee': ('pkg.a', 'B')" in lazy
    with pytest.raises(bundling.BundlingError, match="unexpected line"):
        bundling.lazy_init_source(source + "print('side effect')\n", package="pkg", submodules=set())
    with pytest.raises(bundling.BundlingError, match="__all__"):
        bundling.lazy_init_source(
            source.replace('"event_source"]', '"event_source", "Missing"]'), package="pkg", submodules=set()
        )
