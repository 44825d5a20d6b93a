"""The host-process Lambda executor (credvend-local) inside a running LocalStack."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from credvend_local.fixtures import localstack  # noqa: F401 (session fixture)
from credvend_local.support import client, create_function, invoke

pytestmark = pytest.mark.localstack


@pytest.fixture(scope="module")
def function(localstack):  # noqa: F811
    return create_function(localstack)


def test_cold_then_warm_invoke_runs_as_the_execution_role(localstack, function):  # noqa: F811
    started = time.monotonic()
    cold, error, logs = invoke(localstack, function)
    cold_seconds = time.monotonic() - started
    started = time.monotonic()
    warm, _, _ = invoke(localstack, function)
    warm_seconds = time.monotonic() - started

    assert error is None, cold
    # The credentials LocalStack put in the environment: an assumed-role session of the role.
    assert ":assumed-role/fn-role-" in cold["me"] and cold["me"].endswith(f"/{function}")
    assert warm["pid"] == cold["pid"], "the warm invoke reuses the environment's process"
    assert cold["boto3"] == "1.44.5", "the runtime's boto3 is on the path"
    assert logs.startswith("START RequestId:") and "REPORT RequestId:" in logs
    assert cold_seconds < 5 and warm_seconds < 1


def test_context_has_the_lambda_fields(localstack, function):  # noqa: F811
    result, _, _ = invoke(localstack, function)
    context = result["context"]
    assert context["function_name"] == function
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"].endswith(f":function:{function}")
    assert context["memory_limit_in_mb"] == "128"
    assert context["log_group_name"] == f"/aws/lambda/{function}"
    assert context["log_stream_name"] and len(context["aws_request_id"]) == 36
    assert 0 < context["remaining_ms"] <= 10_000


def test_parallel_invokes_all_succeed(localstack, function):  # noqa: F811
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: invoke(localstack, function), range(10)))
    assert [error for _, error, _ in results] == [None] * 10
    assert len({result["context"]["aws_request_id"] for result, _, _ in results}) == 10


def test_raised_exception_is_reported_like_lambda(localstack, function):  # noqa: F811
    payload, error, logs = invoke(localstack, function, {"fail": "boom"})
    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "boom"
    assert len(payload["requestId"]) == 36
    assert any("in handler" in frame for frame in payload["stackTrace"])
    assert "[ERROR] ValueError: boom" in logs
    # The environment survives a handled error.
    assert invoke(localstack, function)[1] is None


def test_timeout_is_enforced_and_the_environment_recovers(localstack):  # noqa: F811
    name = create_function(localstack, Timeout=1)
    started = time.monotonic()
    payload, error, logs = invoke(localstack, name, {"sleep": 5})
    elapsed = time.monotonic() - started

    assert error == "Unhandled"
    assert payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert "Task timed out after 1.00 seconds" in logs
    assert elapsed < 4, "the executor stops waiting at the function timeout"
    assert invoke(localstack, name)[1] is None, "the next invoke gets a fresh process"


def test_bundled_boto3_wins_over_the_runtime_one(localstack):  # noqa: F811
    files = {
        "app.py": "import boto3\ndef handler(event, context):\n    return boto3.__version__\n",
        "boto3/__init__.py": "__version__ = 'bundled'\n",
    }
    assert invoke(localstack, create_function(localstack, files))[0] == "bundled"


def test_import_error_is_reported_like_lambda(localstack):  # noqa: F811
    name = create_function(localstack, handler="missing_module.handler")
    payload, error, _ = invoke(localstack, name)
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'missing_module'" in payload["errorMessage"]


def test_python312_runs_and_unsupported_runtimes_fail_clearly(localstack):  # noqa: F811
    files = {"app.py": "import sys\ndef handler(event, context):\n    return sys.version\n"}
    assert invoke(localstack, create_function(localstack, files, Runtime="python3.12"))[0].startswith("3.12")

    name = create_function(
        localstack, {"index.js": "exports.handler = async () => 1"}, handler="index.handler", Runtime="nodejs20.x"
    )
    config = client(localstack, "lambda").get_function_configuration(FunctionName=name)
    assert config["State"] == "Failed"
    assert "nodejs20.x" in config.get("StateReason", "")


def test_runtime_process_dying_is_reported_at_once(localstack):  # noqa: F811
    code = "import os\ndef handler(event, context):\n    if event.get('die'):\n        os._exit(3)\n    return 'ok'\n"
    files = {"app.py": code}
    name = create_function(localstack, files, Timeout=20)
    started = time.monotonic()
    payload, error, _ = invoke(localstack, name, {"die": True})
    assert error == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError" and "exit status 3" in payload["errorMessage"]
    assert time.monotonic() - started < 5, "not left to run into the function timeout"
    assert invoke(localstack, name)[0] == "ok", "the next invoke gets a fresh process"
