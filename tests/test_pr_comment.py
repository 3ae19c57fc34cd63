"""reports/pr-comment.md and GitHub workflow annotations."""

from __future__ import annotations

import subprocess
import sys

from test_gate import ACCURACY_GATE, baseline_of, make_result
from test_html_report import planted_state

from harness.gate import check
from harness.report.pr_comment import (
    GITHUB_COMMENT_LIMIT,
    MARKER,
    annotations,
    github_annotations,
    pr_comment,
)
from harness.results import RunState


def test_regressions_come_first_with_their_flips_and_harmful_examples():
    text = pr_comment(planted_state(), environ={})
    assert text.startswith(MARKER)
    lines = text.splitlines()
    assert lines[1].startswith("## ft-harness: **FAIL**")
    regressions = text.index("### Regressions")
    assert regressions < text.index("### Other gated metrics")
    line = next(line for line in lines if line.startswith("- `sentiment` / `lora` · accuracy"))
    assert "**regressed** 1.000 → 0.883" in line and "7 harmful, 0 beneficial, 1 churn" in line
    assert "harmful: `ex-0002`, `ex-0005`, `ex-0011`, `ex-0017`, `ex-0023` and 2 more" in text


def test_links_to_the_run_artifacts_on_github():
    environ = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/model", "GITHUB_RUN_ID": "42"}
    assert "(https://github.com/acme/model/actions/runs/42#artifacts)" in pr_comment(planted_state(), environ=environ)


def test_a_huge_run_is_cut_under_the_limit_with_a_count_of_what_was_left_out():
    state = RunState()
    for i in range(2000):
        current = make_result([0.0 if j < 20 else 1.0 for j in range(40)], candidate=f"candidate-{i:04d}")
        state.results.append(current)
        state.gates += check(current, baseline_of(make_result([1.0] * 40, candidate=current.candidate)), ACCURACY_GATE)
    text = pr_comment(state, environ={})
    assert len(text) < GITHUB_COMMENT_LIMIT
    more = [line for line in text.splitlines() if line.startswith("… ")]
    assert len(more) == 1
    shown = sum(1 for line in text.splitlines() if line.startswith("- `sentiment` / `candidate-"))
    assert shown > 100 and more[0].startswith(f"… {2000 - shown} more")
    assert text.rstrip().endswith("beside this file.")
    assert len(text.splitlines()[1]) < 700  # the run's verdict line, cut


def test_annotations_are_workflow_commands_with_escaped_text():
    state = planted_state()
    state.gates[0].message = "accuracy: 1.000 → 0.883\nsecond line, 100% sure"
    lines = annotations(state)
    assert len(lines) == 1
    assert lines[0].startswith("::error title=ft-harness%3A sentiment/lora accuracy regressed::accuracy: 1.000")
    assert "%0Asecond line, 100%25 sure" in lines[0] and "\n" not in lines[0]
    assert github_annotations(state, environ={}) == []
    assert github_annotations(state, environ={"GITHUB_ACTIONS": "true"}) == lines


def test_pytest_prints_annotations_only_on_github_actions(tmp_path):
    from harness.report.json_out import write_results_json

    write_results_json(planted_state(), tmp_path / "results.json")
    script = ("import sys; from harness.report import read_results, github_annotations; "
              "print('\\n'.join(github_annotations(read_results(sys.argv[1]))))")
    for env, expected in (({"GITHUB_ACTIONS": "true"}, 1), ({}, 0)):
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "results.json")], capture_output=True,
                             text=True, env={**_base_env(), **env}, check=True).stdout
        assert sum(line.startswith("::error title=") for line in out.splitlines()) == expected


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
