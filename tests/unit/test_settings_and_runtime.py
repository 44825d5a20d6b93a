"""Settings come from the environment once, lazily; the module state resets cleanly."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from credvend import handler as handler_module
from credvend.settings import BUNDLED_POLICY_FILE, CODE_ROOT, Settings


def test_defaults_need_no_variables() -> None:
    settings = Settings.from_env({})
    assert settings.policy_file == BUNDLED_POLICY_FILE
    assert BUNDLED_POLICY_FILE.parent.name == "lambda_src"  # next to the packages, as in the asset
    assert (settings.service_name, settings.metrics_namespace) == ("credvend", "credvend")
    assert not settings.in_lambda and not settings.trace_disabled


def test_variables_override() -> None:
    settings = Settings.from_env(
        {
            "CREDVEND_POLICY_FILE": "/opt/p.yaml",
            "POWERTOOLS_SERVICE_NAME": "svc",
            "POWERTOOLS_METRICS_NAMESPACE": "ns",
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    assert settings.policy_file == Path("/opt/p.yaml")
    assert (settings.service_name, settings.metrics_namespace, settings.in_lambda, settings.trace_disabled) == (
        "svc",
        "ns",
        True,
        True,
    )


def test_relative_policy_file_is_relative_to_the_code_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # Lambda's working directory is not promised to be the code root
    assert Path(handler_module.__file__).resolve().parent.parent == CODE_ROOT
    assert Settings.from_env({"CREDVEND_POLICY_FILE": "policy.json"}).policy_file == CODE_ROOT / "policy.json"
    assert Settings.from_env({"CREDVEND_POLICY_FILE": "conf/p.yaml"}).policy_file == CODE_ROOT / "conf" / "p.yaml"
    absolute = tmp_path / "p.yaml"
    assert Settings.from_env({"CREDVEND_POLICY_FILE": str(absolute)}).policy_file == absolute


def test_import_reads_nothing_and_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", "/nonexistent/policy.yaml")
    for name in [name for name in sys.modules if name.startswith("credvend.")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.import_module("credvend.handler")
    assert module._runtime is None  # no policy read, no client, no Powertools objects yet
    assert "credvend.adapters.sts" not in sys.modules  # boto3 waits for the first request


def test_reset_runtime_forgets_everything(policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    first = handler_module.runtime()
    assert handler_module.runtime() is first
    handler_module.reset_runtime()
    assert handler_module.runtime() is not first


def test_no_tracer_without_the_xray_sdk_or_outside_lambda(policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setattr(handler_module, "_xray_sdk_available", lambda: pytest.fail("not even looked up"))
    handler_module.reset_runtime(settings=Settings.from_env())
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "credvend")
    looked_up: list[bool] = []
    monkeypatch.setattr(handler_module, "_xray_sdk_available", lambda: looked_up.append(True) or False)
    handler_module.reset_runtime(settings=Settings.from_env())
    assert looked_up == [True]
