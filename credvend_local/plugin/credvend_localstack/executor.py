"""Host-process Lambda executor for LocalStack (no Docker).

Select it with ``LAMBDA_RUNTIME_EXECUTOR=credvend-local``. Each execution environment is one
local process running ``lambda_runtime.py`` under a Python that matches the function's runtime.
LocalStack's own ExecutorEndpoint receives the environment's callbacks; this module only
starts, watches, times out and stops the processes.

Settings (environment of the LocalStack process, set by credvend_local/launcher.py):
- CREDVEND_LAMBDA_LIBS: a directory with boto3 in it, appended to the function's PYTHONPATH
  after its code, as the Lambda runtime provides boto3 (a bundled boto3 wins);
- CREDVEND_LAMBDA_PYTHON_3_12 / _3_13: interpreter overrides for those runtimes.
"""

import contextlib
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from plux import Plugin

LOG = logging.getLogger(__name__)

EXECUTOR_NAME = "credvend-local"
RUNTIME_SCRIPT = Path(__file__).with_name("lambda_runtime.py")
# Runtimes we can run, with the interpreter version each needs.
PYTHON_RUNTIMES = {"python3.12": "3.12", "python3.13": "3.13"}
STOP_GRACE_SECONDS = 1.0


def find_python(runtime: str) -> str:
    """The interpreter for a Lambda runtime, or a clear error if there is none here."""
    version = PYTHON_RUNTIMES.get(runtime)
    if version is None:
        raise LambdaRuntimeException(
            f"Runtime '{runtime}' is not supported by the {EXECUTOR_NAME} executor "
            f"(supported: {', '.join(sorted(PYTHON_RUNTIMES))})"
        )
    override = os.environ.get(f"CREDVEND_LAMBDA_PYTHON_{version.replace('.', '_')}")
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [override] if override else []
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python"), reverse=True)
    candidates.append(shutil.which(f"python{version}"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise LambdaRuntimeException(f"No Python {version} interpreter found for runtime '{runtime}'")


def timeout_error(request_id: str, timeout: float) -> dict:
    # What Lambda returns (FunctionError: Unhandled) when a function runs out of time.
    return {
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
        "errorType": "Sandbox.Timedout",
        "requestId": request_id,
        "stackTrace": [],
    }


def exit_error(request_id: str, message: str) -> bytes:
    # What Lambda returns when the runtime process dies during an invocation.
    document = {"errorMessage": f"RequestId: {request_id} Error: {message}", "errorType": "Runtime.ExitError"}
    return json.dumps(document | {"requestId": request_id, "stackTrace": []}).encode()


class HostProcessEndpoint(ExecutorEndpoint):
    """LocalStack's endpoint, plus: our ready callback says which port the process serves."""

    def status_ready(self, request, executor_id):
        self.container_port = int(request.get_json(force=True)["port"])
        return super().status_ready(request, executor_id)


class HostProcessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = HostProcessEndpoint(self.id, container_address="127.0.0.1")
        self.process: subprocess.Popen | None = None
        self.env_vars: dict[str, str] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix=f"lambda-{self.id[:8]}-"))
        self.log_path = self.workdir / "output.log"
        self.lock = threading.Lock()
        self.inflight: tuple[str, Future] | None = None  # (request id, result future)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        self.env_vars = {key: str(value) for key, value in env_vars.items()}
        self._start_process()

    def _start_process(self) -> None:
        self.executor_endpoint.start()  # registers the callbacks and a fresh startup future
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                # -P: the runtime script's folder must not land on the function's sys.path.
                [find_python(self.function_version.config.runtime), "-P", str(RUNTIME_SCRIPT)],
                env=self._process_environment(),
                cwd=self._code_dir(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        watcher_args = (self.process, self.executor_endpoint.startup_future)
        threading.Thread(target=self._watch_process, args=watcher_args, daemon=True).start()
        self.executor_endpoint.wait_for_startup()

    def _watch_process(self, process: subprocess.Popen, startup: Future) -> None:
        """Report a process that dies unexpectedly at once, instead of letting LocalStack wait
        for its start-up timeout or the invocation run into the function timeout."""
        process.wait()
        if process is not self.process:
            return  # we killed it ourselves (stop, timeout)
        message = f"Runtime exited with error: exit status {process.returncode}"
        # Either may resolve concurrently (the process reported just before dying): then
        # there is nothing left to do.
        with contextlib.suppress(InvalidStateError):
            if not startup.done():
                payload = json.dumps({"errorMessage": message, "errorType": "Runtime.ExitError"}).encode()
                LOG.warning("Lambda runtime process failed during init: %s", self._log_tail())
                startup.set_exception(StatusErrorException(message, payload=payload))
            elif self.inflight is not None and not self.inflight[1].done():
                request_id, future = self.inflight
                document = exit_error(request_id, message)
                future.set_result(InvocationResult(request_id, document, is_error=True, logs=self._log_tail()))

    def stop(self) -> None:
        self._kill_process()
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:
            LOG.debug("Stopping endpoint of executor %s: %s", self.id, e)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_process(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # --- the environment of the function -------------------------------------------------

    def _code_dir(self) -> str:
        return str(self.function_version.config.code.get_unzipped_code_location())

    def _process_environment(self) -> dict[str, str]:
        env = dict(self.env_vars)
        code_dir = self._code_dir()
        tmp_dir = self.workdir / "tmp"  # this environment's /tmp
        tmp_dir.mkdir(exist_ok=True)
        # The function's code first, then the runtime's boto3, as on Lambda.
        python_path = [code_dir]
        if libs := os.environ.get("CREDVEND_LAMBDA_LIBS"):
            python_path.append(libs)
        env.update(
            LAMBDA_TASK_ROOT=code_dir,
            PYTHONPATH=os.pathsep.join(python_path),
            PYTHONNOUSERSITE="1",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
            TMPDIR=str(tmp_dir),
            HOME=str(tmp_dir),
            PATH=os.environ.get("CREDVEND_LAMBDA_PATH", "/usr/local/bin:/usr/bin:/bin"),
            LANG="en_US.UTF-8",
            CREDVEND_LOG_FILE=str(self.log_path),
            CREDVEND_PARENT_PID=str(os.getpid()),
        )
        return env

    # --- addresses -------------------------------------------------------------------------

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://127.0.0.1:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    # --- invocations -------------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                # Killed after a timeout or exited (sys.exit): Lambda starts a fresh one.
                self._kill_process()
                self._start_process()
            return self._invoke_with_timeout(payload)

    def _invoke_with_timeout(self, payload: dict[str, str]) -> InvocationResult:
        endpoint = self.executor_endpoint
        timeout = float(self.function_version.config.timeout)
        log_offset = self.log_path.stat().st_size
        endpoint.invocation_future = Future()
        endpoint.logs = None
        self.inflight = (payload["invoke-id"], endpoint.invocation_future)
        endpoint._perform_invoke(
            f"http://127.0.0.1:{endpoint.container_port}/invoke", {"http": "", "https": ""}, payload
        ).raise_for_status()
        try:
            # A little slack for the callbacks over HTTP; LocalStack itself never times out.
            return endpoint.invocation_future.result(timeout=timeout + 0.25)
        except FutureTimeout:
            return self._timed_out(payload["invoke-id"], timeout, log_offset)

    def _timed_out(self, request_id: str, timeout: float, log_offset: int) -> InvocationResult:
        self._kill_process()  # the next invoke gets a fresh process
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with open(self.log_path, "ab") as log:
            log.write(f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds\n".encode())
        with open(self.log_path, "rb") as log:
            log.seek(log_offset)
            logs = log.read().decode("utf-8", "replace")
        payload = json.dumps(timeout_error(request_id, timeout)).encode()
        return InvocationResult(request_id, payload, is_error=True, logs=logs)

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.get_logs().splitlines()[-lines:])

    # --- versions ----------------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        # No Go init to download: check that we can run it and unzip the code.
        find_python(function_version.config.runtime)
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        return True


class HostProcessExecutorPlugin(Plugin):
    namespace = "localstack.lambda.runtime_executor"
    name = EXECUTOR_NAME

    def load(self, *args, **kwargs):
        return HostProcessRuntimeExecutor
