"""The launcher's own logic, without starting LocalStack."""

import os

from credvend_local import launcher


def test_cache_path_is_relative_to_the_repo_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the cwd must not matter
    monkeypatch.delenv("CREDVEND_LOCALSTACK_CACHE", raising=False)
    assert launcher.cache_dir() == launcher.REPO_ROOT / ".cache" / "localstack"
    monkeypatch.setenv("CREDVEND_LOCALSTACK_CACHE", "build/ls")
    assert launcher.venv_python() == launcher.REPO_ROOT / "build" / "ls" / "venv" / "bin" / "python"


def test_digest_follows_sources_and_ignores_build_output(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    before = launcher.digest(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-313.pyc").write_bytes(b"\0")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "junk.py").write_text("")
    assert launcher.digest(tmp_path) == before
    (tmp_path / "pkg" / "mod.py").write_text("x = 2\n")
    assert launcher.digest(tmp_path) != before


def test_constraints_pin_localstack_and_the_known_breakers():
    pins = dict(
        line.split("==", 1)
        for line in launcher.CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["localstack-core"] == "2026.3.0"
    assert pins["cbor2"] == "5.8.0" and pins["pyOpenSSL"] == "25.3.0" and pins["cryptography"] == "46.0.5"
    assert "service-identity" in pins
    assert not any(name.lower().startswith("credvend") for name in pins)


def test_stop_and_status_of_unknown_instances(monkeypatch, tmp_path):
    monkeypatch.setenv("CREDVEND_LOCALSTACK_CACHE", str(tmp_path))
    assert launcher.stop("nothing-here") is False
    assert launcher.status("nothing-here") is None
    # A stale state file whose pid is not a LocalStack is never killed, only forgotten.
    (tmp_path / "instances" / "stale").mkdir(parents=True)
    (tmp_path / "instances" / "stale" / "state.json").write_text(f'{{"pid": {os.getpid()}, "port": 1}}')
    assert launcher.status("stale") is None
    assert launcher.stop("stale") is False
    assert not (tmp_path / "instances" / "stale" / "state.json").exists()
