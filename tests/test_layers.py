"""The layering is a test: `lint-imports` checks the import contracts declared in pyproject.toml.

import-linter reads every import statement (function-level ones included) and follows indirect
chains, so an upward import anywhere in the package breaks a contract here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]



def _lint_imports(*args: str, cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports")
    command = [executable] if executable else [sys.executable, "-m", "importlinter.cli"]
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([*command, "--no-cache", "--no-logo", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _cases():
    for contract in CONTRACTS:
        yield pytest.param(contract["id"], id=contract["id"])


def test_every_layer_of_the_package_is_declared():
    """The layers contract is exhaustive: a new top-level module must be placed in a layer."""
    layers = next(c for c in CONTRACTS if c["type"] == "layers")
    assert layers["containers"] == ["harness"] and layers["exhaustive"] is True
    kinds = {c["type"] for c in CONTRACTS}
    assert {"layers", "forbidden", "independence", "acyclic_siblings"} <= kinds


@pytest.mark.parametrize("contract", list(_cases()))
def test_contract_is_kept(contract):
    done = _lint_imports("--contract", contract, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory) -> Path:
    """The package and its contracts copied elsewhere, to add one upward import to."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(REPO / "harness", root / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_one_upward_import_breaks_the_contracts(package_copy):
    config = str(package_copy / "pyproject.toml")
    before = _lint_imports(config, "--contract", "gate-not-report", cwd=package_copy, pythonpath=package_copy)
    assert before.returncode == 0, before.stdout + before.stderr

    verdict = package_copy / "harness" / "gate" / "verdict.py"
    verdict.write_text(verdict.read_text(encoding="utf-8") + "\n\ndef _upward():\n    import harness.report\n",
                       encoding="utf-8")
    after = _lint_imports(config, "--contract", "gate-not-report", "--contract", "layers",
                          cwd=package_copy, pythonpath=package_copy)
    out = after.stdout + after.stderr
    assert after.returncode == 1, out
    assert "gate does not import report BROKEN" in out
    assert "harness.gate is not allowed to import harness.report" in out  # the layers contract too
    assert "harness.gate.verdict -> harness.report" in out  # only the copy has it: the copy was analysed
