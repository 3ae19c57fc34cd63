"""docs/ci.md: the GitHub Actions and GitLab CI files are valid YAML and run commands that exist."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import tomllib
import yaml

from harness.report.pr_comment import ARTIFACT

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "ci.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```yaml\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)
EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
#: actions the workflow uses, each a maintained, versioned action
KNOWN_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-artifact",
                 "marocchino/sticky-pull-request-comment"}


def _documents() -> tuple[dict, dict]:
    github = next(yaml.safe_load(b) for b in BLOCKS if "jobs" in yaml.safe_load(b))
    gitlab = next(yaml.safe_load(b) for b in BLOCKS if "stages" in yaml.safe_load(b))
    return github, gitlab


def check_command(command: str) -> None:
    """A CI command runs: its module is installed, the extra exists, the paths it names exist."""
    words = shlex.split(command)
    assert words[:2] == ["python", "-m"], command
    module = words[2]
    assert importlib.util.find_spec(module) is not None, f"no module {module!r}: {command}"
    if module == "pip":
        assert words[3] == "install", command
        for word in words[4:]:
            extras = re.fullmatch(r"-e\s*|\.\[(.+)\]", word)
            if word.startswith(".["):
                assert extras and set(extras.group(1).split(",")) <= set(EXTRAS), command
    if module == "pytest":
        paths = [w for w in words[3:] if not w.startswith("-")]
        assert paths and all((REPO / p).exists() for p in paths), command


def test_both_files_are_valid_yaml():
    assert len(BLOCKS) == 2
    github, gitlab = _documents()
    assert github and gitlab


def test_the_github_workflow_caches_gates_uploads_and_comments():
    github, _ = _documents()
    assert github["permissions"]["pull-requests"] == "write"
    steps = github["jobs"]["gate"]["steps"]
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert set(uses) == KNOWN_ACTIONS and all("@v" in s["uses"] for s in steps if "uses" in s)
    assert uses["actions/cache"]["with"]["path"] == ".ft-cache"
    upload = uses["actions/upload-artifact"]
    assert upload["with"] == {"name": ARTIFACT, "path": "reports/"} and upload["if"] == "always()"
    comment = uses["marocchino/sticky-pull-request-comment"]["with"]
    assert comment["path"] == "reports/pr-comment.md"
    runs = [s["run"] for s in steps if "run" in s]
    assert any("pytest suites/" in r for r in runs)
    for command in runs:
        check_command(command)


def test_the_gitlab_job_caches_gates_and_keeps_the_reports():
    _, gitlab = _documents()
    job = gitlab["ft-harness"]
    assert job["stage"] in gitlab["stages"]
    assert ".ft-cache/" in job["cache"]["paths"]
    assert job["artifacts"]["when"] == "always" and "reports/" in job["artifacts"]["paths"]
    for command in job["script"]:
        check_command(command)


def test_the_files_the_comment_step_reads_are_the_ones_the_harness_writes(tmp_path):
    from test_report import build_state

    from harness.report import write_reports

    names = {p.name for p in write_reports(build_state(), tmp_path)}
    assert {"pr-comment.md", "index.html", "results.json"} <= names
