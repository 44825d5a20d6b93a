"""Build the vending function's deployment asset without Docker.

The asset is a directory: ``credvend/`` and ``credvend_policy/`` from ``lambda_src``, the
policy file as ``policy.yaml`` at the root and beside it ``policy.json``, the same document
as JSON (validated, and checked to say exactly what the YAML says), which the function
reads (``credvend.settings``, the stack's ``CREDVEND_POLICY_FILE``) so a cold start needs
no YAML parser; and the pinned packages of ``lambda_src/requirements.txt`` installed for the Lambda
platform (``pip install --platform manylinux2014_<arch> --only-binary=:all: --target``),
as Powertools' own e2e utilities do. boto3 is not bundled: the runtime provides it.

* Offline: wheels come from ``.cache/wheels/<arch>`` (``download_function_wheels`` fills it;
  ``make`` runs that), installed with ``--no-index --find-links``. When the cache lacks a
  wheel, the bundler downloads once and says so.
* Cached: a hash of every input (sources, policy, requirements, architecture, this
  file's format version) names ``.cache/bundles/<hash>``; an existing one is reused.
* Lean: what the function never imports is pruned (tests, unused Powertools utilities,
  pydantic's v1 copy, pip's bookkeeping); two Powertools package ``__init__`` modules that
  import every sibling (``event_handler``: AppSync, Bedrock, asyncio...; ``data_classes``:
  every event type) are rewritten to export the same names lazily (PEP 562), so importing
  the REST resolver loads only what it uses; and every module is precompiled to an
  unchecked-hash ``.pyc``: ``/var/task`` is read-only, so without them each cold start
  would compile Powertools and pydantic from source again; unchecked-hash pycs stay valid
  whatever timestamps the asset zip gives the files.

CLI: ``python -m infra.bundling --arch x86_64 --policy policy.yaml`` prints the directory
and its zipped size.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import hashlib
import io
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

Architecture = Literal["x86_64", "arm64"]

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
REQUIREMENTS = LAMBDA_SRC / "requirements.txt"
PACKAGES = ("credvend", "credvend_policy")
POLICY_FILE_NAME = "policy.yaml"
POLICY_JSON_FILE_NAME = "policy.json"  # what the function reads: the same document, as JSON
WHEEL_CACHE = REPO_ROOT / ".cache" / "wheels"
BUNDLE_CACHE = REPO_ROOT / ".cache" / "bundles"
PYTHON_VERSION = "3.13"  # the Lambda runtime the stack deploys (python3.13)
_FORMAT_VERSION = "2"  # bump when the layout or pruning below changes
_PLATFORMS: dict[str, str] = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}

# Relative to the asset root. Powertools ships every utility; the function uses the
# logger, metrics, tracer and REST event handler only (checked by the bench, which runs
# the function from the asset, and by tests/unit/test_bundling.py).
_PRUNE_DIRS = (
    *(
        f"aws_lambda_powertools/utilities/{name}"
        for name in (
            "auth_alpha",
            "batch",
            "circuit_breaker",
            "data_masking",
            "feature_flags",
            "idempotency",
            "kafka",
            "metadata",
            "parameters",
            "parser",
            "streaming",
            "validation",
        )
    ),
    "aws_lambda_powertools/event_handler/openapi/swagger_ui",
    "aws_lambda_powertools/metrics/provider/datadog",
    "pydantic/v1",
)
_PRUNE_DIST_INFO_FILES = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
# Package __init__ modules made lazy (see the module docstring). Each must consist only of
# ``from <its own submodule> import name`` statements and ``__all__``; anything else fails
# the build, so a Powertools upgrade that changes one is noticed, not half-rewritten.
_LAZY_INITS = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes")
_LAZY_INIT_TEMPLATE = """{docstring}
# Rewritten by credvend's bundler (infra/bundling.py) from the package's own __init__: the
# same public names, each imported on first access (PEP 562) instead of all at import time.
import importlib as _importlib

{eager}
_LAZY = {lazy!r}

__all__ = {all_names!r}


def __getattr__(name):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {{__name__!r}} has no attribute {{name!r}}") from None
    value = getattr(_importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
"""


class BundlingError(RuntimeError):
    pass


def _pip(*args: str, isolated: bool = False) -> None:
    command = [sys.executable, "-m", "pip", *(["--isolated"] if isolated else []), "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise BundlingError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


def _platform_args(architecture: Architecture) -> list[str]:
    try:
        platform = _PLATFORMS[architecture]
    except KeyError:
        raise BundlingError(f"architecture must be one of {sorted(_PLATFORMS)}, not {architecture!r}") from None
    return [
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-deps",  # requirements.txt pins the whole closure (minus what the runtime has)
    ]


def wheel_dir(architecture: Architecture) -> Path:
    return WHEEL_CACHE / architecture


def download_function_wheels(architecture: Architecture, *, requirements: Path = REQUIREMENTS) -> Path:
    """Fill ``.cache/wheels/<arch>`` with the function's wheels (needs the package index)."""
    target = wheel_dir(architecture)
    target.mkdir(parents=True, exist_ok=True)
    _pip("download", "--quiet", *_platform_args(architecture), "-r", str(requirements), "-d", str(target))
    return target


def _source_files() -> Iterable[tuple[str, Path]]:
    for package in PACKAGES:
        root = LAMBDA_SRC / package
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path.relative_to(LAMBDA_SRC).as_posix(), path


def inputs_hash(*, policy_file: Path, architecture: Architecture, requirements: Path = REQUIREMENTS) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("format", _FORMAT_VERSION.encode())
    add("arch", architecture.encode())
    add("python", f"{PYTHON_VERSION}/{sys.version_info[0]}.{sys.version_info[1]}".encode())
    add("requirements", requirements.read_bytes())
    add("policy", Path(policy_file).read_bytes())
    for name, path in _source_files():
        add(name, path.read_bytes())
    return digest.hexdigest()[:24]


def _install_requirements(target: Path, architecture: Architecture, requirements: Path) -> None:
    wheels = wheel_dir(architecture)
    args = [*_platform_args(architecture), "--no-compile", "--target", str(target), "-r", str(requirements)]
    try:
        _pip("install", "--quiet", "--no-index", "--find-links", str(wheels), *args, isolated=True)
    except BundlingError:
        # The cache is empty or stale (requirements changed): fill it once, then stay offline.
        print(f"credvend bundling: fetching wheels into {wheels}", file=sys.stderr)
        download_function_wheels(architecture, requirements=requirements)
        _pip("install", "--quiet", "--no-index", "--find-links", str(wheels), *args, isolated=True)


def _prune(root: Path) -> None:
    for relative in _PRUNE_DIRS:
        shutil.rmtree(root / relative, ignore_errors=True)
    for path in list(root.rglob("*")):
        if path.is_dir() and (path.name in ("__pycache__", "tests", "test") and path.parent != root):
            shutil.rmtree(path, ignore_errors=True)
    for path in list(root.glob("*.dist-info/*")):
        if path.name in _PRUNE_DIST_INFO_FILES:
            path.unlink()
    shutil.rmtree(root / "bin", ignore_errors=True)  # console scripts have no use on Lambda


def lazy_init_source(source: str, *, package: str, submodules: Iterable[str]) -> str:
    """A package ``__init__`` that only re-exports names from its submodules, made lazy.

    Names that share a submodule's name stay eager: importing that submodule would
    otherwise set the package attribute to the module and shadow the re-exported object.
    """
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree, clean=False)
    exports: dict[str, tuple[str, str]] = {}
    all_names: list[str] | None = None
    for index, node in enumerate(tree.body):
        if index == 0 and docstring is not None:
            continue
        if isinstance(node, ast.ImportFrom) and node.level in (0, 1) and node.module:
            module = node.module if node.level == 0 else f"{package}.{node.module}"
            if module.startswith(f"{package}.") and all(alias.name != "*" for alias in node.names):
                exports.update({alias.asname or alias.name: (module, alias.name) for alias in node.names})
                continue
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "__all__"
        ):
            all_names = [str(name) for name in ast.literal_eval(node.value)]
            continue
        raise BundlingError(f"{package}/__init__.py: cannot make lazy, unexpected line {node.lineno}")
    if all_names is None or not set(all_names) <= set(exports):
        raise BundlingError(f"{package}/__init__.py: __all__ missing or naming what it does not import")
    shadowed = set(submodules)
    eager = "\n".join(
        f"from {module} import {attribute} as {name}"
        for name, (module, attribute) in exports.items()
        if name in shadowed
    )
    lazy = {name: target for name, target in exports.items() if name not in shadowed}
    return _LAZY_INIT_TEMPLATE.format(
        docstring=repr(docstring) if docstring else "", eager=eager, lazy=lazy, all_names=all_names
    )


def _make_inits_lazy(root: Path) -> None:
    for package in _LAZY_INITS:
        directory = root.joinpath(*package.split("."))
        init = directory / "__init__.py"
        submodules = {
            path.stem if path.suffix == ".py" else path.name
            for path in directory.iterdir()
            if path.name != "__init__.py" and (path.suffix == ".py" or (path / "__init__.py").is_file())
        }
        init.write_text(lazy_init_source(init.read_text(encoding="utf-8"), package=package, submodules=submodules))


def _precompile(root: Path) -> None:
    if sys.version_info[:2] != tuple(int(part) for part in PYTHON_VERSION.split(".")):
        print(
            f"credvend bundling: Python {sys.version_info[0]}.{sys.version_info[1]} cannot precompile for "
            f"{PYTHON_VERSION}; the asset ships sources only (slower cold starts)",
            file=sys.stderr,
        )
        return
    ok = compileall.compile_dir(
        str(root),
        quiet=1,
        workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        stripdir=str(root),  # tracebacks name the module path, not the build directory
        prependdir="/var/task",
    )
    if not ok:
        raise BundlingError(f"compiling {root} failed")


def _build(target: Path, *, policy_file: Path, architecture: Architecture, requirements: Path) -> None:
    target.mkdir(parents=True)
    _install_requirements(target, architecture, requirements)
    for name, path in _source_files():
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    shutil.copyfile(policy_file, target / POLICY_FILE_NAME)
    (target / POLICY_JSON_FILE_NAME).write_text(_policy_as_json(policy_file), encoding="utf-8")
    _prune(target)
    _make_inits_lazy(target)
    _precompile(target)


def _policy_as_json(policy_file: Path) -> str:
    if str(LAMBDA_SRC) not in sys.path:  # the CDK app has it already; ``python -m infra.bundling`` may not
        sys.path.insert(0, str(LAMBDA_SRC))
    from credvend_policy import PolicyError, policy_as_json

    try:
        return policy_as_json(policy_file)
    except PolicyError as exc:
        raise BundlingError(str(exc)) from None


def build_function_bundle(
    *,
    policy_file: Path,
    architecture: Architecture,
    out_dir: Path | None = None,
    requirements: Path = REQUIREMENTS,
) -> Path:
    """The asset directory for the function (``Code.from_asset`` it).

    Reused from ``.cache/bundles/<hash of inputs>`` when nothing changed; with ``out_dir``
    the result is also copied there (replacing it).
    """
    policy_file = Path(policy_file).resolve()
    if not policy_file.is_file():
        raise BundlingError(f"policy file {policy_file} does not exist")
    cached = BUNDLE_CACHE / inputs_hash(policy_file=policy_file, architecture=architecture, requirements=requirements)
    if not cached.is_dir():
        BUNDLE_CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=BUNDLE_CACHE))
        try:
            _build(staging / "asset", policy_file=policy_file, architecture=architecture, requirements=requirements)
            try:
                os.rename(staging / "asset", cached)  # atomic: a cached directory is always complete
            except OSError:
                if not cached.is_dir():  # pragma: no cover - another build won the race otherwise
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if out_dir is None:
        return cached
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(cached, out_dir)
    return out_dir


def zipped_size(directory: Path) -> int:
    """Bytes of the directory as a deflated zip, as the asset is uploaded."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.tell()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bundling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(_PLATFORMS), default="x86_64")
    parser.add_argument("--policy", type=Path, default=REPO_ROOT / "policy.yaml")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--download-only", action="store_true", help="only fill .cache/wheels/<arch>")
    args = parser.parse_args(argv)
    if args.download_only:
        print(download_function_wheels(args.arch))
        return 0
    bundle = build_function_bundle(policy_file=args.policy, architecture=args.arch, out_dir=args.out)
    size = zipped_size(bundle)
    print(bundle)
    print(f"zipped size: {size} bytes ({size / 1024 / 1024:.2f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
