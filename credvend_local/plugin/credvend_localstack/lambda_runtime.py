"""Runtime-interface process for one Lambda execution environment (host-process executor).

Started by ``executor.HostProcessRuntimeExecutor`` with the interpreter that matches the
function's runtime. It is a standalone script (standard library only): it must run under a
bare pyenv Python that has nothing of LocalStack installed.

Protocol (the one LocalStack's Go init speaks, see FACTS.md):
- serve ``POST /invoke`` on a free loopback port; answer at once and run the handler in the
  main thread, one invocation at a time (LocalStack never sends two to one environment);
- after init: ``POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{LOCALSTACK_RUNTIME_ID}/ready``
  (our body ``{"port": N}`` tells the executor where we listen) or ``.../error``;
- per invocation: ``POST invocations/<request-id>/logs`` first, then ``/response`` or ``/error``.

stdout/stderr are a log file owned by the executor; the logs of one invocation are the bytes
appended to it while that invocation ran (the executor path is in CREDVEND_LOG_FILE).
The function timeout is enforced by the executor, which kills this process.
"""

import http.client
import http.server
import importlib
import json
import os
import queue
import resource
import sys
import threading
import time
import traceback
import urllib.parse

RUNTIME_ENDPOINT = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
RUNTIME_ID = os.environ["LOCALSTACK_RUNTIME_ID"]
LOG_FILE = os.environ.pop("CREDVEND_LOG_FILE")
PARENT_PID = int(os.environ.pop("CREDVEND_PARENT_PID"))

invocations: "queue.Queue[dict]" = queue.Queue()


# --- talking to LocalStack -------------------------------------------------------------


class RuntimeApiClient:
    """POSTs to LocalStack's runtime endpoint over one kept-alive connection.

    A new connection per callback costs ~20 ms each inside LocalStack's gateway; reusing one
    brings a warm invoke from ~80 ms to ~25 ms. Only the main thread posts.
    """

    def __init__(self, endpoint: str):
        parts = urllib.parse.urlsplit(endpoint)
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path
        self.connection = None

    def post(self, path: str, body: bytes) -> None:
        for attempt in (1, 2):  # the server may have closed an idle connection: retry once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                headers = {"Content-Type": "application/json"}
                self.connection.request("POST", f"{self.prefix}/{path}", body=body, headers=headers)
                self.connection.getresponse().read()
                return
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise


runtime_api = RuntimeApiClient(RUNTIME_ENDPOINT)


def post(path: str, body: bytes) -> None:
    runtime_api.post(path, body)


def post_json(path: str, document) -> None:
    post(path, json.dumps(document).encode())


# --- the /invoke server ------------------------------------------------------------------


class InvokeHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/invoke":
            self.send_response(404)
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        invocations.put(json.loads(self.rfile.read(length)))
        # Accept at once: the result travels back through the runtime endpoint.
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass  # keep the function's log free of access lines


def serve() -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InvokeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def watch_parent() -> None:
    # LocalStack may die without stopping us (SIGKILL): when we are re-parented, exit.
    # (PR_SET_PDEATHSIG would fire when the LocalStack *thread* that spawned us exits.)
    while os.getppid() == PARENT_PID:
        time.sleep(0.5)
    os._exit(1)


# --- errors in Lambda's shape --------------------------------------------------------------


def error_document(exc: BaseException, request_id: str | None, error_type: str | None = None):
    # Like the AWS runtime, show the function's frames only, not the runtime's own.
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename != __file__ and not frame.filename.startswith("<frozen")
    ]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": request_id or "",
        "stackTrace": traceback.format_list(frames),
    }


def log_error(document: dict) -> None:
    # Same shape as the AWS Python runtime's log line for an unhandled error.
    lines = [f"[ERROR] {document['errorType']}: {document['errorMessage']}", "Traceback (most recent call last):"]
    lines += [frame.rstrip("\n") for frame in document["stackTrace"]]
    print("\n".join(lines), file=sys.stderr, flush=True)


# --- the handler ----------------------------------------------------------------------


def load_handler():
    """Import ``module.function`` from _HANDLER, as the Lambda Python runtime does."""
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{spec}': expected module.function")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise RuntimeImportError(f"Unable to import module '{module_name}': {exc}") from exc
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise RuntimeHandlerNotFound(f"Handler '{function_name}' missing on module '{module_name}'") from None


class RuntimeImportError(Exception):
    lambda_type = "Runtime.ImportModuleError"


class RuntimeHandlerNotFound(Exception):
    lambda_type = "Runtime.HandlerNotFound"


class LambdaContext:
    """The context object of the AWS Python runtime, with its usual attributes."""

    def __init__(self, request_id: str, invoked_arn: str, deadline: float):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in the AWS runtime (it comes from the environment there too).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def log_size() -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    return os.path.getsize(LOG_FILE)


def read_log_since(offset: int) -> str:
    sys.stdout.flush()
    sys.stderr.flush()
    with open(LOG_FILE, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def invoke(handler, invocation: dict) -> None:
    request_id = invocation["invoke-id"]
    timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3)
    started = time.time()
    context = LambdaContext(request_id, invocation["invoked-function-arn"], started + timeout)
    os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
    offset = log_size()
    print(f"START RequestId: {request_id} Version: {context.function_version}", flush=True)

    path, body = "response", b""
    try:
        result = handler(json.loads(invocation.get("payload") or "null"), context)
        try:
            body = json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            path, body = "error", json.dumps(error_document(exc, request_id, "Runtime.MarshalError")).encode()
    except SystemExit as exc:
        # Lambda reports the exit and replaces the environment; the executor restarts us.
        document = {
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {exc.code}",
            "errorType": "Runtime.ExitError",
            "requestId": request_id,
            "stackTrace": [],
        }
        finish(request_id, started, offset, "error", json.dumps(document).encode(), memory=context.memory_limit_in_mb)
        os._exit(1)
    except Exception as exc:  # the function's own error: report it, keep the environment
        document = error_document(exc, request_id)
        log_error(document)
        path, body = "error", json.dumps(document).encode()
    finish(request_id, started, offset, path, body, memory=context.memory_limit_in_mb)


def finish(request_id: str, started: float, offset: int, path: str, body: bytes, memory) -> None:
    duration_ms = (time.time() - started) * 1000
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"END RequestId: {request_id}", flush=True)
    print(
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {max_rss_mb} MB",
        flush=True,
    )
    # Logs first: LocalStack attaches them to the result when the result arrives.
    post_json(f"invocations/{request_id}/logs", {"logs": read_log_since(offset)})
    post(f"invocations/{request_id}/{path}", body)


def main() -> None:
    threading.Thread(target=watch_parent, daemon=True).start()
    port = serve()
    try:
        handler = load_handler()
    except Exception as exc:
        document = error_document(exc, None, getattr(exc, "lambda_type", None))
        log_error(document)
        post_json(f"status/{RUNTIME_ID}/error", document)
        sys.exit(1)
    post_json(f"status/{RUNTIME_ID}/ready", {"port": port})
    while True:
        invoke(handler, invocations.get())


if __name__ == "__main__":
    main()
