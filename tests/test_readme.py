"""The README's examples run: every fenced TOML spec loads with the real loader, every Python suite
runs through pytest against it on the embedded base (small data written for it), every offline-safe
``ft-harness`` command exits 0, and its metric tables say what the metric registry says."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import tomllib
import warm_python
from miniproject import PYTEST_OPTIONS

from harness.metrics.registry import METRICS, OPTIONS
from harness.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = [(lang, body) for lang, body in FENCE.findall(README)]
SPECS = [body for lang, body in BLOCKS if lang == "toml" and re.search(r"^\[suites\.", body, re.MULTILINE)]
SUITES = [body for lang, body in BLOCKS if lang == "python" and "ft_suite(" in body]
#: ``ft-harness`` subcommands that need no network, no model and no running job
SAFE = ("data validate", "data lint", "data convert", "baseline show", "cache ls")
COMMANDS = [line.strip() for lang, body in BLOCKS if lang == "bash" for line in body.splitlines()
            if line.strip().startswith("ft-harness ")]

# words that make each label easy to learn from a few rows (any label gets some)
WORDS = {"billing": "charged twice refund invoice payment card", "bug": "crash error broken button freezes",
         "other": "hello question thanks opening hours", "positive": "wonderful superb great",
         "negative": "horrible awful broken"}
SIZES = {"train": 96, "validation": 12, "eval": 30}


def _row(task: str, labels: list[str], i: int) -> dict:
    if task == "classification":
        label = labels[i % len(labels)]
        words = WORDS.get(label, f"{label} {label}").split()
        text = " ".join(words[(i + k) % len(words)] for k in range(4))
        return {"messages": [{"role": "user", "content": f"Ticket {i}: {text}"},
                             {"role": "assistant", "content": label}]}
    return {"prompt": f"Describe item {i}: a red lamp", "completion": f"A red lamp, item {i}."}


def write_project(root: Path, spec_text: str) -> Path:
    """The README spec in ``root`` with every data file it names (and the corpus) written beside it."""
    root.mkdir(parents=True, exist_ok=True)
    spec = tomllib.loads(spec_text)
    corpus = spec.get("harness", {}).get("corpus")
    if corpus:
        lines = (REPO / "fixtures" / "corpus.txt").read_text(encoding="utf-8").splitlines()[:800]
        (root / corpus).parent.mkdir(parents=True, exist_ok=True)
        (root / corpus).write_text("\n".join(lines) + "\n", encoding="utf-8")
    for suite in spec["suites"].values():
        for split, n in SIZES.items():
            if split not in suite:
                continue
            path = root / suite[split]
            path.parent.mkdir(parents=True, exist_ok=True)
            offset = {"train": 0, "validation": 1000, "eval": 2000}[split]
            rows = [_row(suite["task"], list(suite.get("labels", [])), offset + i) for i in range(n)]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = root / "candidates.toml"
    path.write_text(spec_text, encoding="utf-8")
    return path


def _spec_for(suite_code: str) -> str:
    name = re.search(r"ft_suite\(\s*['\"]([^'\"]+)['\"]", suite_code).group(1)
    matching = [s for s in SPECS if f"[suites.{name}]" in s]
    assert matching, f"the README's suite {name!r} has no spec block declaring [suites.{name}]"
    return matching[0]


def test_the_readme_has_examples_to_run():
    assert SPECS and SUITES and COMMANDS, (len(SPECS), len(SUITES), len(COMMANDS))
    assert all(any(command.startswith(f"ft-harness {safe}") for safe in SAFE) for command in COMMANDS), COMMANDS


def test_ci_runs_the_readme_commands_and_the_tests_in_parallel():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    installs = [line.strip() for lang, body in BLOCKS if lang == "bash" for line in body.splitlines()
                if line.strip().startswith("python -m pip install")]
    test_command = next(line for line in installs if "pytest tests/" in line)
    main_job = next(line for line in installs if "pytest suites/" in line)
    assert test_command in ci and main_job in ci, (installs, ci)
    assert ci.index(test_command) < ci.index(main_job)
    assert " -n auto" in test_command  # pytest-xdist, in the command and not in pyproject's addopts
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "-n" not in pyproject["tool"]["pytest"]["ini_options"].get("addopts", "").split()


@pytest.mark.parametrize("index", range(len(SPECS)))
def test_every_spec_block_loads(tmp_path: Path, index: int):
    spec = load_spec(write_project(tmp_path, SPECS[index]))
    assert spec.suites


@pytest.mark.parametrize("command", COMMANDS)
def test_every_ft_harness_command_exits_0(tmp_path: Path, command: str):
    write_project(tmp_path, SPECS[0])
    done = warm_python.run(["-m", "harness", *shlex.split(command)[1:]], cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(SUITES)))
def test_every_suite_block_runs_and_passes(tmp_path: Path, index: int):
    code = SUITES[index]
    spec = write_project(tmp_path, _spec_for(code))
    (tmp_path / "test_readme_suite.py").write_text(code, encoding="utf-8")
    done = warm_python.run(
        ["-m", "pytest", "test_readme_suite.py", *PYTEST_OPTIONS, "--rootdir", str(tmp_path),
         "--ft-spec", str(spec), "--ft-cache-dir", str(tmp_path / "cache"), "--ft-reports-dir", "reports"],
        cwd=tmp_path, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "harness error" not in out and "test error" not in out


# -- the metric tables -----------------------------------------------------------------------
def _table_after(heading: str, first_column: str) -> list[list[str]]:
    """The rows of the first markdown table after ``heading`` whose header starts with ``first_column``."""
    section = README.split(heading, 1)[1]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_metric_table_lists_every_registry_metric_with_its_facts():
    rows = {_names(row[0])[0]: row for row in _table_after("## Metrics", "metric")}
    assert set(rows) == set(METRICS)
    for name, (_, task, scale, score, aggregate, options, _library) in rows.items():
        facts = METRICS[name]
        assert task == facts.task, name
        assert scale == ("0–1" if facts.scale == 1.0 else "0–100"), name
        assert (_names(score)[:1] or [None])[0] == facts.score, name
        assert aggregate == facts.aggregate, name
        assert tuple(_names(options)) == facts.options, name


def test_the_metric_options_table_matches_the_registry():
    rows = {_names(row[0])[0]: row for row in _table_after("metric_options` (a table", "option")}
    assert set(rows) == set(OPTIONS)
    for name, (_, values, default, _read_by) in rows.items():
        option = OPTIONS[name]
        assert [json.loads(v) for v in _names(values)] == list(option.choices), name
        assert json.loads(_names(default)[0]) == option.default, name
