"""Install, start and stop LocalStack as a host process (no Docker) for credvend's tests and demo.

Used by the session-scoped pytest fixture (credvend_local/fixtures.py) and by `make demo`.
Standard library only, so any Python 3.9+ can run it:

    python credvend_local/launcher.py install              # venv + plugin + Lambda boto3
    python credvend_local/launcher.py start [--name demo]   # prints the endpoint, keeps running
    python credvend_local/launcher.py status [--name demo]
    python credvend_local/launcher.py env [--name demo]     # `export AWS_ENDPOINT_URL=...` lines
    python credvend_local/launcher.py stop [--name demo]
    python credvend_local/launcher.py freeze                # rewrite constraints.txt from the venv

Everything lives under the cache folder (CREDVEND_LOCALSTACK_CACHE, relative to the repo root;
default .cache/localstack):
    venv/                  LocalStack 2026.3.0 on Python 3.13, from constraints.txt
    lambda-runtime-libs/   boto3 for functions (lambda-runtime-requirements.txt)
    instances/<name>/      state.json, localstack.log, volume/, tmp/ of one running LocalStack
"""

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
CONSTRAINTS = HERE / "constraints.txt"
LAMBDA_RUNTIME_REQUIREMENTS = HERE / "lambda-runtime-requirements.txt"
PLUGIN_DIR = HERE / "plugin"

LOCALSTACK_REQUIREMENTS = [
    "localstack-core[runtime]==2026.3.0",
    # Unpinned, these break 2026.3.0 (FACTS.md); constraints.txt pins them and the rest.
    "cbor2",
    "pyopenssl",
    "cryptography",
    "service-identity",
    "setuptools",  # builds our plugin without build isolation (offline, fast)
]
EXECUTOR_NAME = "credvend-local"
DEFAULT_REGION = "us-east-1"
START_TIMEOUT = 90.0
STOP_GRACE = 10.0


def log(message: str) -> None:
    print(f"[localstack] {message}", file=sys.stderr, flush=True)


# --- paths -----------------------------------------------------------------------------------


def cache_dir() -> Path:
    # Relative paths are taken from the repo root, so the result does not depend on the cwd.
    return REPO_ROOT / os.environ.get("CREDVEND_LOCALSTACK_CACHE", ".cache/localstack")


def venv_python() -> Path:
    return cache_dir() / "venv" / "bin" / "python"


def lambda_libs_dir() -> Path:
    return cache_dir() / "lambda-runtime-libs"


def instance_dir(name: str) -> Path:
    return cache_dir() / "instances" / name


def find_python313() -> str:
    """Python 3.13 for LocalStack's venv: CREDVEND_LS_PYTHON, pyenv's 3.13, or python3.13."""
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [os.environ.get("CREDVEND_LS_PYTHON")]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13.*/bin/python"), reverse=True)
    candidates.append(shutil.which("python3.13"))
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("LocalStack 2026.3.0 needs Python 3.13: set CREDVEND_LS_PYTHON")


# --- installation ----------------------------------------------------------------------------


def digest(*paths: Path, extra: str = "") -> str:
    """Hash of file contents (directories: every source file under them) plus `extra`."""
    sha = hashlib.sha256(extra.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts or ".egg-info" in str(file) or "build" in file.relative_to(root).parts[:1]:
                continue
            sha.update(str(file.relative_to(root) if root.is_dir() else file.name).encode())
            sha.update(file.read_bytes())
    return sha.hexdigest()


def run_pip(python: Path, args: list, what: str) -> None:
    """pip with its output in the cache's install.log, shown only when it fails."""
    log_path = cache_dir() / "install.log"
    with open(log_path, "ab") as out:
        out.write(f"\n=== {what}: pip {' '.join(map(str, args))}\n".encode())
        out.flush()
        result = subprocess.run([str(python), "-m", "pip", *map(str, args)], stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{what} failed (full log: {log_path}):\n{tail}")


def up_to_date(stamp: Path, wanted: str) -> bool:
    return stamp.exists() and stamp.read_text() == wanted


def install_venv() -> None:
    stamp = cache_dir() / "venv.sha256"
    python = find_python313()
    wanted = digest(CONSTRAINTS, extra=python)
    if venv_python().exists() and up_to_date(stamp, wanted):
        return
    log(f"installing LocalStack 2026.3.0 into {venv_python().parents[1].relative_to(REPO_ROOT)} (about a minute)")
    shutil.rmtree(cache_dir() / "venv", ignore_errors=True)
    stamp.unlink(missing_ok=True)
    subprocess.run([python, "-m", "venv", str(cache_dir() / "venv")], check=True)
    run_pip(
        venv_python(),
        ["install", "--disable-pip-version-check", "-c", CONSTRAINTS, *LOCALSTACK_REQUIREMENTS],
        "LocalStack install",
    )
    stamp.write_text(wanted)


def install_plugin() -> None:
    stamp = cache_dir() / "plugin.sha256"
    wanted = digest(PLUGIN_DIR, extra=(cache_dir() / "venv.sha256").read_text())
    if up_to_date(stamp, wanted):
        return
    log("installing the credvend LocalStack plugin")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the repo.
    build_copy = cache_dir() / "plugin-build"
    shutil.rmtree(build_copy, ignore_errors=True)
    shutil.copytree(PLUGIN_DIR, build_copy, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    run_pip(
        venv_python(),
        [
            "install",
            "--disable-pip-version-check",
            "--no-build-isolation",
            "--force-reinstall",
            "--no-deps",
            "-c",
            CONSTRAINTS,
            build_copy,
        ],
        "plugin install",
    )
    stamp.write_text(wanted)


def install_lambda_libs() -> None:
    """boto3 for functions, in its own folder: the executor appends it to their PYTHONPATH."""
    stamp = cache_dir() / "lambda-runtime-libs.sha256"
    wanted = digest(LAMBDA_RUNTIME_REQUIREMENTS)
    if lambda_libs_dir().exists() and up_to_date(stamp, wanted):
        return
    log("installing boto3 for Lambda functions")
    shutil.rmtree(lambda_libs_dir(), ignore_errors=True)
    run_pip(
        venv_python(),
        [
            "install",
            "--disable-pip-version-check",
            "--no-deps",
            "--target",
            lambda_libs_dir(),
            "-r",
            LAMBDA_RUNTIME_REQUIREMENTS,
        ],
        "Lambda boto3 install",
    )
    # pip compiled the bytecode for 3.13; python3.12 functions would otherwise recompile boto3
    # on every cold start (their environments do not write bytecode).
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for python in sorted(glob.glob(f"{pyenv_root}/versions/3.12.*/bin/python"))[-1:]:
        subprocess.run([python, "-m", "compileall", "-q", str(lambda_libs_dir())], check=False)
    stamp.write_text(wanted)


@contextlib.contextmanager
def install_lock():
    # Two test sessions (or a test run and `make demo`) may install at the same time.
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def install() -> Path:
    """Make sure the venv, our plugin and the functions' boto3 are installed and current."""
    with install_lock():
        install_venv()
        install_plugin()
        install_lambda_libs()
    return venv_python()


# --- running instances -----------------------------------------------------------------------


class LocalStack:
    """A LocalStack process: what tests and scripts need to reach it, and how to stop it."""

    def __init__(self, name: str, port: int, pid: int, region: str = DEFAULT_REGION, process=None):
        self.name = name
        self.port = port
        self.pid = pid
        self.region = region
        self.endpoint = f"http://127.0.0.1:{port}"
        self._process = process  # the Popen when this process started it

    @property
    def log_path(self) -> Path:
        return instance_dir(self.name) / "localstack.log"

    def env(self) -> dict:
        """Variables that point AWS SDKs and the CDK CLI at this LocalStack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def stop(self) -> None:
        stop_pid(self.pid, self._process)
        state = instance_dir(self.name) / "state.json"
        state.unlink(missing_ok=True)

    def __repr__(self):
        return f"LocalStack(name={self.name!r}, endpoint={self.endpoint!r}, pid={self.pid})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def localstack_environment(port: int, folder: Path) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        # Our caller's SDK settings and venv must not leak into LocalStack's own config.
        if not key.startswith(("AWS_", "LOCALSTACK_", "PYTHON")) and key not in ("VIRTUAL_ENV", "GATEWAY_LISTEN")
    }
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        LOCALSTACK_VOLUME_DIR=str(folder / "volume"),
        TMPDIR=str(folder / "tmp"),
        DISABLE_EVENTS="1",  # otherwise shutdown hangs trying to reach an analytics host
        DNS_ADDRESS="0",  # no DNS server: loopback only, and no clash between instances on :53
        SKIP_SSL_CERT_DOWNLOAD="1",
        LAMBDA_RUNTIME_EXECUTOR=EXECUTOR_NAME,
        # Many environments may start at once on 2 cores (50 parallel invokes).
        LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT="60",
        CREDVEND_LAMBDA_LIBS=str(lambda_libs_dir()),
    )
    return env


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM LocalStack when the process that started it dies
    # (the test run was killed), so no LocalStack outlives its tests.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(name: str, port: int, tie_to_parent: bool) -> subprocess.Popen:
    folder = instance_dir(name)
    for sub in ("volume", "tmp"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    with open(folder / "localstack.log", "wb") as out:
        return subprocess.Popen(
            [str(venv_python()), "-m", "localstack.runtime.main"],
            env=localstack_environment(port, folder),
            cwd=str(folder),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Own process group: stop() can kill LocalStack and its Lambda processes together.
            start_new_session=True,
            preexec_fn=_die_with_parent if tie_to_parent else None,
        )


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def get_json(url: str, timeout: float = 2.0):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read())


def is_ready(endpoint: str) -> bool:
    """Health answers, and the init stage READY ran (all on_infra_start hooks are done)."""
    try:
        get_json(f"{endpoint}/_localstack/health")
        return bool(get_json(f"{endpoint}/_localstack/init/ready").get("completed"))
    except (OSError, ValueError):
        return False


def wait_until_ready(instance: LocalStack, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"LocalStack exited with status {process.returncode} while starting; "
                f"log {instance.log_path}:\n{log_tail(instance.log_path)}"
            )
        if is_ready(instance.endpoint):
            return
        time.sleep(0.2)
    stop_pid(process.pid, process)
    raise RuntimeError(
        f"LocalStack not healthy after {timeout:.0f}s; log {instance.log_path}:\n{log_tail(instance.log_path)}"
    )


def start(
    name: str = "default", tie_to_parent: bool = False, stop_at_exit: bool = False, timeout: float = START_TIMEOUT
) -> LocalStack:
    """Install if needed, start LocalStack on a free loopback port, wait until it is ready.

    tie_to_parent: LocalStack gets SIGTERM when this process dies (tests; not `launcher start`).
    stop_at_exit: stop it from an atexit handler of this process too.
    A healthy instance already running under `name` is reused as is.
    """
    running = status(name)
    if running is not None:
        return running
    install()
    stop(name)  # leftovers of a crashed run under this name
    port = free_port()
    started = time.monotonic()
    process = spawn(name, port, tie_to_parent)
    instance = LocalStack(name, port, process.pid, process=process)
    if stop_at_exit:
        atexit.register(instance.stop)
    write_state(instance)
    try:
        wait_until_ready(instance, process, timeout)
    except BaseException:
        instance.stop()
        raise
    log(f"LocalStack '{name}' ready at {instance.endpoint} in {time.monotonic() - started:.1f}s (pid {process.pid})")
    return instance


def remove_instance(name: str) -> None:
    """Delete a stopped instance's folder, keeping its log as instances/<name>.last.log."""
    folder = instance_dir(name)
    kept = folder.parent / f"{name.split('-')[0]}.last.log"
    with contextlib.suppress(OSError):
        shutil.copyfile(folder / "localstack.log", kept)
    shutil.rmtree(folder, ignore_errors=True)


def write_state(instance: LocalStack) -> None:
    state = {
        "name": instance.name,
        "pid": instance.pid,
        "port": instance.port,
        "endpoint": instance.endpoint,
        "region": instance.region,
    }
    (instance_dir(instance.name) / "state.json").write_text(json.dumps(state, indent=2))


def read_state(name: str):
    try:
        return json.loads((instance_dir(name) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def is_localstack_pid(pid: int) -> bool:
    """The pid is alive and is a LocalStack (guards against a recycled pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
    return not zombie and b"localstack.runtime.main" in cmdline


def status(name: str = "default"):
    """The running, healthy instance under `name`, or None."""
    state = read_state(name)
    if not state or not is_localstack_pid(state["pid"]):
        return None
    instance = LocalStack(name, state["port"], state["pid"], state.get("region", DEFAULT_REGION))
    return instance if is_ready(instance.endpoint) else None


def stop(name: str = "default") -> bool:
    """Stop the instance under `name` (from any process). True if one was running."""
    state = read_state(name)
    if not state:
        return False
    was_running = is_localstack_pid(state["pid"])
    stop_pid(state["pid"])
    (instance_dir(name) / "state.json").unlink(missing_ok=True)
    return was_running


def stop_pid(pid: int, process=None) -> None:
    """SIGTERM LocalStack, SIGKILL it after a grace period, then kill what is left of its
    process group (Lambda runtime processes it spawned)."""
    if not is_localstack_pid(pid):
        # Already gone (or the pid was recycled: then it is not ours to kill). Its Lambda
        # processes notice their parent is gone and exit on their own.
        if process is not None:
            with contextlib.suppress(Exception):
                process.wait(1)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_for_exit(pid, process, STOP_GRACE):
        log(f"LocalStack pid {pid} ignored SIGTERM for {STOP_GRACE:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_for_exit(pid, process, 5)
    # LocalStack led its own group (start_new_session), so the pgid is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(Exception):
            process.wait(1)


def wait_for_exit(pid: int, process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return True
        if not is_localstack_pid(pid):
            return True
        time.sleep(0.1)
    return False


# --- freezing the venv -----------------------------------------------------------------------


def freeze() -> None:
    """Rewrite constraints.txt from the installed venv (our own plugin excluded)."""
    frozen = subprocess.run(
        [str(venv_python()), "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True
    ).stdout
    header = CONSTRAINTS.read_text().splitlines()
    header = [line for line in header if line.startswith("#")]
    packages = [line for line in frozen.splitlines() if line and not line.lower().startswith(("credvend", "pip=="))]
    CONSTRAINTS.write_text("\n".join(header + packages) + "\n")
    log(f"wrote {len(packages)} pins to {CONSTRAINTS.relative_to(REPO_ROOT)}")


# --- command line ----------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "start", "stop", "status", "env", "freeze"])
    parser.add_argument("--name", default="default", help="instance name (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT)
    args = parser.parse_args(argv)

    if args.command == "install":
        print(install())
    elif args.command == "freeze":
        freeze()
    elif args.command == "start":
        print(start(args.name, timeout=args.timeout).endpoint)
    elif args.command == "stop":
        log("stopped" if stop(args.name) else f"no LocalStack '{args.name}' was running")
    elif args.command in ("status", "env"):
        instance = status(args.name)
        if instance is None:
            log(f"no LocalStack '{args.name}' is running")
            return 1
        if args.command == "status":
            print(
                json.dumps(
                    {
                        "name": instance.name,
                        "endpoint": instance.endpoint,
                        "pid": instance.pid,
                        "region": instance.region,
                    }
                )
            )
        else:
            print("\n".join(f"export {key}={value}" for key, value in instance.env().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
