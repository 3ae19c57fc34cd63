"""People's labels, round trip: blind export, programmatic filling, validated import, a gateable
per-example metric, the judge's agreement with people (κ equal to scikit-learn's), and labels
invalidated when an output changes."""

from __future__ import annotations

import csv
import json

import pytest
from gradedproject import ROWS, session, write_recorded, write_spec
from judgeserver import judge_backend, rule_preference
from test_judges import MATERIALS, candidate_outputs, other_outputs

from harness.cli import main
from harness.serve.runtime import serve_in_thread

PAIR = "s-cand-vs-other"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_in_thread(judge_backend(tmp_path_factory.mktemp("judge"))) as running:
        yield running


def people(example_id: str, cand: str, other: str) -> str:
    """The people's verdict ("cand", "other" or "tie"): the rule, but on every seventh item the other way."""
    verdict = {"A": "cand", "B": "other", "tie": "tie"}[rule_preference(MATERIALS[example_id], cand, other)]
    if int(example_id.split("-")[1]) % 7 == 0:
        verdict = {"cand": "other", "other": "cand", "tie": "cand"}[verdict]
    return verdict


def _project(tmp_path, server, monkeypatch, min_agreement: float = 0.3, gate: str = ""):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    write_recorded(tmp_path, "cand", candidate_outputs())
    write_recorded(tmp_path, "other", other_outputs())
    judge = (f'[suites.s.judges.rule]\nmode = "pairwise"\nmodel = "rule"\nbase_url = "{server.base_url}"\n'
             f'api_key_env = "FT_JUDGE_TEST_KEY"\nrubric = "Which is better?"\nagainst = "other"\n'
             f'min_agreement = {min_agreement}\n')
    human = '[suites.s.human]\nlabels = "labels/s.json"\nagainst = "other"\n'
    return write_spec(tmp_path, judge + human + gate, candidates=("cand", "other"))


def _run(tmp_path, spec, **options):
    run = session(tmp_path, spec, **options)
    result = run.evaluate("s", "cand")
    run.finish(0)
    return run, result


def _export(tmp_path, seed: int = 0, out: str = "human") -> list[dict]:
    code = main(["human", "export", "--suite", "s", "--a", "cand", "--b", "other", "--run",
                 str(tmp_path / "reports"), "--out", str(tmp_path / out), "--seed", str(seed)])
    assert code == 0
    with open(tmp_path / out / f"{PAIR}.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _fill(rows: list[dict], skip: int = 0) -> list[dict]:
    mine, theirs = candidate_outputs(), other_outputs()
    filled = []
    for n, row in enumerate(rows):
        verdict = people(row["id"], mine[row["id"]], theirs[row["id"]])
        cand_left = row["left"] == mine[row["id"]]
        side = "tie" if verdict == "tie" else "left" if (verdict == "cand") == cand_left else "right"
        filled.append({**row, "label": "" if n < skip else side})
    return filled


def _write_csv(path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_round_trip_gives_a_per_example_metric_and_kappa_equal_to_sklearn(tmp_path, server, monkeypatch):
    from sklearn.metrics import cohen_kappa_score

    spec = _project(tmp_path, server, monkeypatch)
    _run(tmp_path, spec)
    rows = _export(tmp_path)
    sheet = (tmp_path / "human" / f"{PAIR}.csv").read_text(encoding="utf-8")
    assert "cand" not in sheet.replace("candidate", "") and "other" not in sheet  # blind
    mine = candidate_outputs()
    lefts = [row["left"] == mine[row["id"]] for row in rows]
    assert 0 < sum(lefts) < len(lefts)  # sides randomised per item
    assert _export(tmp_path, out="again") == rows  # the seed reproduces the sheet
    assert [r["left"] for r in _export(tmp_path, seed=1, out="other_seed")] != [r["left"] for r in rows]
    key = json.loads((tmp_path / "human" / f"{PAIR}.key.json").read_text())
    assert key["a"] == "cand" and set(key["items"]) == {i for i, _, _ in ROWS}
    tasks = json.loads((tmp_path / "human" / f"{PAIR}.labelstudio.json").read_text())
    assert [t["data"]["id"] for t in tasks] == [r["id"] for r in rows]

    _write_csv(tmp_path / "filled.csv", _fill(rows, skip=2))
    store = tmp_path / "labels" / "s.json"
    assert main(["human", "import", str(tmp_path / "filled.csv"), "--key", str(tmp_path / "human" / f"{PAIR}.key.json"),
                 "--store", str(store)]) == 0
    _, result = _run(tmp_path, spec)
    blank = {row["id"] for row in rows[:2]}
    theirs = other_outputs()
    expected = [None if i in blank else {"cand": 1.0, "other": -1.0, "tie": 0.0}[people(i, mine[i], theirs[i])]
                for i, _, _ in ROWS]
    assert result.per_example["human:other"] == expected
    labelled = [e for e in expected if e is not None]
    assert result.metrics["human:other"] == pytest.approx(sum(labelled) / len(labelled))
    judge = [v for v, e in zip(result.per_example["judge:rule"], expected, strict=True) if e is not None]
    figures = result.details["judges"]["rule"]["agreement"]
    assert figures["n"] == len(labelled) == len(ROWS) - 2
    assert figures["kappa"] == pytest.approx(cohen_kappa_score(judge, labelled))
    assert figures["raw"] == pytest.approx(sum(j == h for j, h in zip(judge, labelled, strict=True)) / len(labelled))
    assert figures["kappa_ci"][0] <= figures["kappa"] <= figures["kappa_ci"][1]
    assert figures["untrusted"] is False and 0.3 < figures["kappa"] < 1.0

    # an edited output invalidates its label (and only its label)
    changed = dict(mine)
    edited = rows[5]["id"]
    changed[edited] = "A different description."
    write_recorded(tmp_path, "cand", changed)
    _, again = _run(tmp_path, spec)
    position = [i for i, _, _ in ROWS].index(edited)
    assert again.per_example["human:other"][position] is None
    assert sum(v is not None for v in again.per_example["human:other"]) == len(labelled) - 1
    assert again.details["human"]["other"]["stale"] == 1


def test_an_untrusted_judge_reads_untrusted_and_fails_the_gate(tmp_path, server, monkeypatch):
    from harness.gate import GateFailure

    gate = '[suites.s.gate]\nmetrics = { "judge:rule" = { tolerance = 0.1 }, "human:other" = { tolerance = 0.1 } }\n'
    spec = _project(tmp_path, server, monkeypatch, min_agreement=0.95, gate=gate)
    _run(tmp_path, spec)
    rows = _export(tmp_path)
    _write_csv(tmp_path / "filled.csv", _fill(rows))
    assert main(["human", "import", str(tmp_path / "filled.csv"), "--key", str(tmp_path / "human" / f"{PAIR}.key.json"),
                 "--store", str(tmp_path / "labels" / "s.json")]) == 0
    accepted = session(tmp_path, spec, update_baseline=True)
    accepted.gate(accepted.evaluate("s", "cand"))
    accepted.finish(0)
    run = session(tmp_path, spec)
    with pytest.raises(GateFailure, match=r"(?s)judge:rule.*untrusted judge: Cohen's kappa with people 0\.\d+ on 24"):
        run.gate(run.evaluate("s", "cand"))
    records = {r.metric: r.verdict for r in run.state.gates}
    run.close()
    # 24 unchanged labels on a -1..1 scale cannot rule out the tolerance under the betting bound
    assert records == {"judge:rule": "untrusted judge", "human:other": "inconclusive"}


def test_bad_sheets_are_refused_naming_file_and_line_and_nothing_is_stored(tmp_path, server, monkeypatch, capsys):
    spec = _project(tmp_path, server, monkeypatch)
    _run(tmp_path, spec)
    rows = _fill(_export(tmp_path))
    rows[3] = {**rows[3], "label": "both"}
    rows[6] = {**rows[6], "id": "p-99"}
    rows.append(dict(rows[0]))
    _write_csv(tmp_path / "bad.csv", rows)
    store = tmp_path / "labels" / "s.json"
    code = main(["human", "import", str(tmp_path / "bad.csv"), "--key", str(tmp_path / "human" / f"{PAIR}.key.json"),
                 "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 1 and not store.exists()
    assert "bad.csv:5: field 'label': 'both' is not one of left, right, tie" in err
    assert "bad.csv:8: field 'id': 'p-99' is not an item of this sheet's key" in err
    assert f"bad.csv:26: field 'id': {rows[0]['id']!r} repeats line 2" in err


def test_a_label_studio_export_imports_like_the_csv(tmp_path, server, monkeypatch):
    spec = _project(tmp_path, server, monkeypatch)
    _run(tmp_path, spec)
    filled = _fill(_export(tmp_path))
    tasks = [{"id": n, "data": {k: row[k] for k in ("item", "id", "question", "left", "right")},
              "annotations": [{"result": [{"from_name": "label", "to_name": "question", "type": "choices",
                                           "value": {"choices": [row["label"]]}}]}]} for n, row in enumerate(filled)]
    (tmp_path / "export.json").write_text(json.dumps(tasks), encoding="utf-8")
    _write_csv(tmp_path / "filled.csv", filled)
    stores = []
    for sheet in ("export.json", "filled.csv"):
        store = tmp_path / f"{sheet}.store.json"
        assert main(["human", "import", str(tmp_path / sheet), "--key", str(tmp_path / "human" / f"{PAIR}.key.json"),
                     "--store", str(store)]) == 0
        stores.append(json.loads(store.read_text()))
    assert stores[0] == stores[1] and len(stores[0]["labels"]) == len(ROWS)
