"""Newcomer mistakes refused when the session loads the spec, before anything trains, each named by
the spec key or file:line that caused it (Banking77- and E2E-shaped fixtures written here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import warm_python
from miniproject import PYTEST_OPTIONS, make_project

from harness.errors import SpecError
from harness.options import SessionOptions
from harness.session import EvalSession

INTENTS = ["card_arrival", "card_linking", "exchange_rate"]


def _chat(user: str, label: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": label}]})


def _banking(root: Path, *, labels: list[str], eval_rows: list[tuple[str, str]] | None = None,
             train_rows: list[tuple[str, str]] | None = None, extra: str = "", candidates: str = "") -> Path:
    """A Banking77-shaped classification project: intents as labels, train and eval JSONL."""
    root.mkdir(parents=True, exist_ok=True)
    train_rows = train_rows or [(f"question {i} about my card", INTENTS[i % 3]) for i in range(30)]
    eval_rows = eval_rows or [(f"eval question {i}", INTENTS[i % 3]) for i in range(12)]
    (root / "train.jsonl").write_text("".join(_chat(u, a) + "\n" for u, a in train_rows), encoding="utf-8")
    (root / "eval.jsonl").write_text("".join(_chat(u, a) + "\n" for u, a in eval_rows), encoding="utf-8")
    spec = root / "spec.toml"
    spec.write_text(f'[suites.banking77]\ntask = "classification"\nlabels = {json.dumps(labels)}\n'
                    f'train = "train.jsonl"\neval = "eval.jsonl"\n{extra}\n'
                    f'[suites.banking77.candidates.lora]\nkind = "lora"\n{candidates}', encoding="utf-8")
    return spec


def _load(spec: Path) -> EvalSession:
    session = EvalSession(SessionOptions(spec_path=spec, root_dir=spec.parent, cache_dir=spec.parent / "cache"))
    session.spec  # noqa: B018 - loading the spec runs the checks
    return session


def test_a_label_typo_in_the_spec_is_refused_naming_file_line_and_key(tmp_path):
    spec = _banking(tmp_path, labels=["card_arrival", "card_linkng", "exchange_rate"])
    with pytest.raises(SpecError) as info:
        _load(spec)
    message = str(info.value)
    assert message.startswith(f"{(tmp_path / 'train.jsonl').resolve()}:2: 10 of 30 train row(s)")
    assert f"{spec}: suites.banking77.labels" in message and "'card_linking'" in message
    assert "lines 2, 5, 8, 11, 14 and 5 more" in message


def test_one_eval_row_with_a_label_outside_labels_is_refused(tmp_path):
    rows = [(f"eval question {i}", INTENTS[i % 3]) for i in range(11)] + [("where is my card", "card_delivery")]
    spec = _banking(tmp_path, labels=INTENTS, eval_rows=rows)
    with pytest.raises(SpecError, match=r"eval\.jsonl:12: 1 of 12 eval row\(s\) carry a label .*'card_delivery'"):
        _load(spec)


def test_aliases_and_case_are_accepted_as_labels(tmp_path):
    rows = [(f"eval question {i}", INTENTS[i % 3].upper()) for i in range(11)] + [("card?", "arrival")]
    spec = _banking(tmp_path, labels=INTENTS, eval_rows=rows, extra='label_aliases = { arrival = "card_arrival" }')
    _load(spec)


def test_eval_rows_copied_into_train_are_refused_unless_allowed(tmp_path):
    evaluation = [(f"eval question {i}", INTENTS[i % 3]) for i in range(12)]
    copied = [evaluation[0], evaluation[1], ("  EVAL question 2 ", INTENTS[2])]  # two verbatim, one folded
    train = [(f"question {i} about my card", INTENTS[i % 3]) for i in range(30)] + copied
    spec = _banking(tmp_path, labels=INTENTS, eval_rows=evaluation, train_rows=train)
    with pytest.raises(SpecError) as info:
        _load(spec)
    message = str(info.value)
    assert f"{spec}: suites.banking77.eval: 3 of 12 eval row(s) also occur in the train split" in message
    assert "(2 verbatim, 1 after case / whitespace normalisation; eval lines 1, 2, 3)" in message
    assert "allow_train_eval_overlap = 3" in message

    allowed = _banking(tmp_path, labels=INTENTS, eval_rows=evaluation, train_rows=train,
                       extra="allow_train_eval_overlap = 3")
    note = _load(allowed).state.run_info["train_eval_overlap"]["banking77"]
    assert (note["eval_rows"], note["exact"], note["normalised"], note["allowed"]) == (3, 2, 1, 3)


def test_the_report_shows_an_allowed_overlap(tmp_path):
    from harness.report.verdicts import suite_verdict

    evaluation = [(f"eval question {i}", INTENTS[i % 3]) for i in range(12)]
    train = [(f"question {i} about my card", INTENTS[i % 3]) for i in range(30)] + evaluation[:2]
    spec = _banking(tmp_path, labels=INTENTS, eval_rows=evaluation, train_rows=train,
                    extra="allow_train_eval_overlap = 5")
    session = _load(spec)
    warnings = suite_verdict(session.state, "banking77").warnings
    assert warnings == ("⚠ banking77: 2 of 12 eval rows also occur in train (2 verbatim, 0 after case / whitespace "
                        "normalisation), allowed by allow_train_eval_overlap = 5: scores on them may reward memorising",)


@pytest.mark.parametrize("mistake, key, words", [
    ("missing", "train", "file not found"),
    ("empty", "train", "empty file"),
    ("tsv", "train", "looks tab-separated"),
    ("column", "train", "missing column 'output' for the instruction format"),
])
def test_an_unreadable_split_is_named_under_the_suites_own_key(tmp_path, mistake, key, words):
    spec = _banking(tmp_path, labels=INTENTS, candidates="")
    text = spec.read_text(encoding="utf-8")
    if mistake == "missing":
        text = text.replace('train = "train.jsonl"', 'train = "trian.jsonl"')
    elif mistake == "empty":
        (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    elif mistake == "tsv":
        (tmp_path / "train.csv").write_text("instruction\toutput\nhi\tcard_arrival\n", encoding="utf-8")
        text = text.replace('train = "train.jsonl"', 'train = "train.csv"')
    else:
        (tmp_path / "train.csv").write_text("instruction,input\nhi,x\nyo,y\n", encoding="utf-8")
        text = text.replace('train = "train.jsonl"', 'train = "train.csv"')
    spec.write_text(text + '\n[suites.banking77.candidates.fewshot]\nkind = "prompted"\nbase_kind = "base"\n'
                           'shots = 3\n', encoding="utf-8")
    with pytest.raises(SpecError) as info:
        _load(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: suites.banking77.{key}: "), message
    assert words in message and "candidates.fewshot" not in message
    assert message.count("\n") <= 2  # one header line, not one line per row


def test_slice_field_typos_and_label_description_typos_are_refused_at_load(tmp_path):
    spec = _banking(tmp_path, labels=INTENTS, extra='[suites.banking77.slices]\n'
                                                   'channel = { by = "metadata", field = "chanel" }\n')
    with pytest.raises(SpecError, match=rf"{spec}: suites\.banking77\.slices: .*chanel"):
        _load(spec)
    spec = _banking(tmp_path, labels=INTENTS, candidates="")
    spec.write_text(spec.read_text(encoding="utf-8").replace('kind = "lora"', 'kind = "encoder-zeroshot"\n'
                    'label_descriptions = { card_arival = "my card has not arrived" }'), encoding="utf-8")
    with pytest.raises(SpecError, match=rf"{spec}: suites\.banking77\.candidates\.lora\.label_descriptions"
                                        r"\.card_arival: not one of the suite's labels"):
        _load(spec)


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_fails_before_anything_trains(tmp_path: Path):
    """The mini project with a fine-tune and a prompted candidate whose shots cannot fit: the pytest
    run fails naming the prompted candidate's key, and the fine-tune is never trained."""
    project, cache = tmp_path / "p", tmp_path / "cache"
    spec = make_project(project)
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "warmup_epochs = 0.2 }", "warmup_epochs = 0.2, max_position_embeddings = 96 }")
        + '\n[suites.mini.candidates.fewshot]\nkind = "prompted"\nbase_kind = "base"\nshots = 8\n', encoding="utf-8")
    run = warm_python.run(["-m", "pytest", "test_mini.py", *PYTEST_OPTIONS, "-x",
                           "--rootdir", str(project), "--ft-spec", "candidates.toml", "--ft-cache-dir", str(cache)],
                          cwd=project, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "suites.mini.candidates.fewshot.shots" in out and "checked before anything trains" in out
    assert not list(cache.glob("**/adapter*")), "the LoRA candidate trained"
