"""The code base stays ruff-clean (the configuration lives in pyproject.toml)."""

import shutil
import subprocess
import sys

import pytest


def test_ruff_clean(repo_root):
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    if not ruff:
        pytest.importorskip("ruff", reason="ruff is part of the [test] extra")
    done = subprocess.run([*command, "check", "harness", "tests", "bench", "suites", "conftest.py"],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
