"""`ft-harness rescore` pairs two candidates' outputs by example id, whatever their line order,
and refuses outputs that do not hold the same examples, naming the files and the ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

from harness.cli import EXIT_HARNESS_ERROR, EXIT_OK, main
from harness.errors import DatasetError
from harness.report.json_out import SCHEMA_VERSION, STATE_KEY
from harness.rescore import rescore_run

IDS = [f"e{i:02d}" for i in range(20)]
A_RIGHT = set(IDS[:10])                      # a: right on e00-e09
B_RIGHT = set(IDS[:5]) | set(IDS[10:])       # b: right on e00-e04 and e10-e19


def _rows(right: set[str], ids: list[str]) -> list[dict]:
    return [{"id": i, "input": f"review {i}", "reference": "positive",
             "prediction": "positive" if i in right else "negative"} for i in ids]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _run_dir(tmp_path: Path, b_ids: list[str]) -> Path:
    """A run folder: outputs of a (id order) and b (``b_ids`` order), and one comparison to redo."""
    run = tmp_path / "run"
    _write(run / "outputs" / "mini" / "a.jsonl", _rows(A_RIGHT, IDS))
    _write(run / "outputs" / "mini" / "b.jsonl", _rows(B_RIGHT, b_ids))
    state = {"comparisons": [{"suite": "mini", "metric": "accuracy", "a": "a", "b": "b",
                              "result": {"alpha": 0.05}}]}
    (run / "results.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, STATE_KEY: state}),
                                      encoding="utf-8")
    return run


def _rescore(run: Path):
    return rescore_run(run, task="classification", labels=["positive", "negative"])


@pytest.mark.parametrize("order", ["same", "reversed"])
def test_outputs_in_another_order_are_paired_by_id(tmp_path: Path, order: str):
    b_ids = IDS if order == "same" else IDS[::-1]
    outcome = _rescore(_run_dir(tmp_path, b_ids))
    (comparison,) = outcome.state.comparisons
    # paired by id: 5 examples a right / b wrong (e05-e09), 10 a wrong / b right (e10-e19).
    # Paired by position, the reversed file would give 0 and 5 (p = 0.0625) instead.
    assert comparison.result["p_value"] == pytest.approx(binomtest(5, 15, 0.5).pvalue)
    assert comparison.result["mean_a"] == pytest.approx(0.50)
    assert comparison.result["mean_b"] == pytest.approx(0.75)
    assert comparison.result["difference"] == pytest.approx(0.25)


def test_a_missing_id_is_refused_naming_both_files_and_the_id(tmp_path: Path):
    run = _run_dir(tmp_path, [i for i in IDS[::-1] if i != "e07"])
    with pytest.raises(DatasetError) as caught:
        _rescore(run)
    message = str(caught.value)
    assert str(run / "outputs" / "mini" / "a.jsonl") in message
    assert str(run / "outputs" / "mini" / "b.jsonl") in message
    assert "1 only in 'a' ('e07')" in message and "cannot pair" in message


def test_a_repeated_id_is_refused_with_file_line_and_field(tmp_path: Path):
    run = _run_dir(tmp_path, [*IDS[:-1], "e03"])
    with pytest.raises(DatasetError, match=r"b\.jsonl:20: example id 'e03' repeats line 4.*\(field 'id'\)"):
        _rescore(run)


def test_cli_exit_codes(tmp_path: Path, capsys):
    good = _run_dir(tmp_path / "good", IDS[::-1])
    assert main(["rescore", str(good), "--task", "classification", "--labels", "positive,negative"]) == EXIT_OK
    bad = _run_dir(tmp_path / "bad", IDS[1:])
    code = main(["rescore", str(bad), "--task", "classification", "--labels", "positive,negative"])
    assert code == EXIT_HARNESS_ERROR
    assert "only in 'a' ('e00')" in capsys.readouterr().err
