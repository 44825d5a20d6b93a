"""Stand-in for ``infra/bundling.py`` while that module does not exist yet.

It lays out the asset the way the real bundler does (the function's packages and the
policy file at the root) but installs NO third-party packages, so the function it makes
cannot run on Lambda. ``infra.assembly`` uses it only when ``infra.bundling`` is missing
and says so on stderr.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
POLICY_FILE_NAME = "policy.yaml"


def build_function_bundle(*, policy_file: Path, architecture: str, out_dir: Path | None = None) -> Path:
    policy_bytes = Path(policy_file).read_bytes()
    if out_dir is None:
        key = hashlib.sha256(policy_bytes + architecture.encode()).hexdigest()[:16]
        out_dir = REPO_ROOT / ".build" / "function-stub" / key
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for package in ("credvend", "credvend_policy"):
        source = LAMBDA_SRC / package
        if source.is_dir():
            shutil.copytree(source, out_dir / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    requirements = LAMBDA_SRC / "requirements.txt"
    if requirements.is_file():
        shutil.copy2(requirements, out_dir / "requirements.txt")
    (out_dir / POLICY_FILE_NAME).write_bytes(policy_bytes)
    from credvend_policy import policy_as_json  # the JSON copy the function reads, as the real bundler writes

    (out_dir / "policy.json").write_text(policy_as_json(policy_file), encoding="utf-8")
    return out_dir
