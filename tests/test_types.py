"""Types are a test: mypy checks harness/ at the strictness pyproject.toml's [tool.mypy] states
(mypy's defaults, untyped function bodies left out, third-party packages without stubs and the
ones its overrides skip as Any), and finds nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
SETTINGS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def test_the_stated_strictness_is_the_one_checked():
    assert SETTINGS["packages"] == ["harness"]
    assert SETTINGS["warn_unused_ignores"] is True and SETTINGS["ignore_missing_imports"] is True


@pytest.mark.slow
def test_mypy_finds_no_error_in_the_package():
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
