"""docs/judges.md runs: its spec and suite against a judge served on 127.0.0.1, then its human-label
loop (export, filled programmatically, import) and the run that trusts the judge afterwards."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import warm_python
from gradedproject import write_eval, write_recorded
from judgeserver import judge_backend
from miniproject import PYTEST_OPTIONS
from test_human_labels import people
from test_judges import candidate_outputs, other_outputs

from harness.serve.runtime import serve_in_thread

DOC = (Path(__file__).resolve().parent.parent / "docs" / "judges.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_in_thread(judge_backend(tmp_path_factory.mktemp("judge"))) as running:
        yield running


def _pytest(project: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JUDGE_API_KEY": "sk-docs-judge-key", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return warm_python.run(["-m", "pytest", "test_descriptions.py", *PYTEST_OPTIONS,
                            "--rootdir", str(project), "--ft-spec", "spec.toml", "--ft-cache-dir", "cache",
                            "--ft-reports-dir", "reports", *extra], cwd=project, env=env, timeout=600)


@pytest.mark.slow
def test_the_judges_guide_runs_against_a_local_server(tmp_path, server):
    spec = _blocks("toml")[0].replace("http://127.0.0.1:8000/v1", server.base_url).replace('"judge-model"', '"rule"')
    (tmp_path / "spec.toml").write_text(spec, encoding="utf-8")
    (tmp_path / "test_descriptions.py").write_text(_blocks("python")[0], encoding="utf-8")
    write_eval(tmp_path)
    write_recorded(tmp_path, "production", other_outputs())
    write_recorded(tmp_path, "candidate", candidate_outputs())

    first = _pytest(tmp_path)  # no labels yet: the judge with min_agreement is not trusted
    out = first.stdout + first.stderr
    assert first.returncode == 1 and "untrusted judge" in out and "1 passed" in out, out[-3000:]
    report = (tmp_path / "reports" / "descriptions.md").read_text(encoding="utf-8")
    judges = report.split("## Judges", 1)[1].split("\n## ", 1)[0]
    for column in ("position flips", "self-consistency", "unparseable", "longer answer wins",
                   "verdict ~ length (Spearman)", "agreement with people"):
        assert column in judges
    assert "### Judges" in report.split("## Cost", 1)[1]

    commands = [shlex.split(line.rstrip("\\").strip()) for line in
                _blocks("bash")[0].replace("\\\n", " ").splitlines() if line.startswith("ft-harness")]
    assert [c[1:3] for c in commands] == [["human", "export"], ["human", "import"]]
    run = lambda argv: warm_python.run(["-m", "harness", *argv[1:]], cwd=tmp_path, timeout=120)  # noqa: E731
    exported = run(commands[0])
    assert exported.returncode == 0, exported.stderr
    sheet = tmp_path / "human" / "descriptions-candidate-vs-production.csv"
    rows = list(csv.DictReader(sheet.open(encoding="utf-8")))
    mine, theirs = candidate_outputs(), other_outputs()
    for row in rows:
        verdict = people(row["id"], mine[row["id"]], theirs[row["id"]])
        row["label"] = "tie" if verdict == "tie" else "left" if (verdict == "cand") == (row["left"] == mine[row["id"]]) \
            else "right"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = run(commands[1])
    assert imported.returncode == 0 and "24 label(s)" in imported.stdout, imported.stderr

    accepted = _pytest(tmp_path, "--ft-update-baseline")
    assert accepted.returncode == 0, (accepted.stdout + accepted.stderr)[-3000:]
    trusted = _pytest(tmp_path)
    assert trusted.returncode == 0, (trusted.stdout + trusted.stderr)[-3000:]
    report = (tmp_path / "reports" / "descriptions.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if "`judge:preferred`" in line and line.startswith("| candidate"))
    assert re.search(r"κ 0\.\d\d \[", row) and "untrusted" not in row
    assert "human:production" in report
