"""The code base stays ruff-clean (the configuration lives in pyproject.toml)."""

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_ruff_clean(repo_root):
    ruff = shutil.which("ruff")
    command = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    if not ruff:
        pytest.importorskip("ruff", reason="ruff is part of the [test] extra")
    done = subprocess.run([*command, "check", "harness", "tests", "bench", "suites", "conftest.py"],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


DEFERRED = re.compile(r"#\s*deferred:\s*(imports (?P<heavy>\w+)(?: and (?P<heavy2>\w+))?|cycle with (?P<cycle>harness(?:\.\w+)*))")


def _project_target(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> str | None:
    """The project module a statement imports (relative imports resolved), or None if third-party."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names if alias.name.split(".")[0] == "harness"]
        return names[0] if names else None
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, *([node.module] if node.module else [])])
    return node.module if node.module and node.module.split(".")[0] == "harness" else None


def _function_level_project_imports(harness_dir: Path):
    """(file, line, importing module, imported module, reason comment or None) for each import of
    a project module inside a function body."""
    for path in sorted(harness_dir.rglob("*.py")):
        parts = path.relative_to(harness_dir.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                target = _project_target(module, is_package, node)
                if target is None:
                    continue
                text = "\n".join(lines[node.lineno - 2:node.end_lineno])
                yield path, node.lineno, module, target, DEFERRED.search(text)


def test_function_level_project_imports_say_why(repo_root):
    """A project module is imported inside a function only to defer a heavy third-party import or
    to break an import cycle, and a `# deferred: imports X` / `# deferred: cycle with harness.y`
    comment (on the statement or the line above) says which; everything else sits at module level."""
    found = {(path, line, match) for path, line, _, _, match in
             _function_level_project_imports(Path(repo_root) / "harness")}
    unexplained = sorted(f"{path.relative_to(repo_root)}:{line}" for path, line, match in found if match is None)
    assert not unexplained, "function-level project imports without a '# deferred: ...' reason:\n" + "\n".join(unexplained)


@pytest.mark.slow
def test_deferred_imports_do_defer_what_they_claim(repo_root):
    """Each `# deferred: imports X` is true: the importing module alone does not load X, the
    deferred module does (each checked in a fresh interpreter)."""
    claims = {(module, target, tuple(heavy for heavy in (match["heavy"], match["heavy2"]) if heavy))
              for _, _, module, target, match in _function_level_project_imports(Path(repo_root) / "harness")
              if match is not None and match["heavy"]}
    assert claims
    probe = ("import importlib, sys\n"
             "module, target, *heavy = sys.argv[1:]\n"
             "importlib.import_module(module)\n"
             "assert not [h for h in heavy if h in sys.modules], f'{module} already loads {heavy}'\n"
             "importlib.import_module(target)\n"
             "assert all(h in sys.modules for h in heavy), f'{target} does not load all of {heavy}'\n")
    for module, target, heavy in sorted(claims):
        done = subprocess.run([sys.executable, "-c", probe, module, target, *heavy], cwd=repo_root,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
