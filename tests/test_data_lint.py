"""Quality lint and the truncation counter, checked against independent counts and TRL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.data import load_split
from harness.data.lint import lint_splits, normalise_text
from harness.data.records import Example
from harness.data.truncation import assistant_mask, count_truncation

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "yes", "no", "maybe",
         "very", "long", "reply", "short", "question", "what", "is", "it", "positive",
         "negative", "neutral", "be", "brief", "hello"]
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]
_BODY = ("{%- for m in messages -%}"
         "{%- if m['role'] == 'assistant' -%}{{ '<|assistant|> ' }}"
         "{MARK_OPEN}{{ m['content'] + ' <eos> ' }}{MARK_CLOSE}"
         "{%- else -%}{{ '<|' + m['role'] + '|> ' + m['content'] + ' <eos> ' }}{%- endif -%}"
         "{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|assistant|> ' }}{%- endif -%}")


def word_tokenizer(with_markers: bool = True):
    """A whitespace word-level tokenizer with a chat template (markers optional)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>",
                                        pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    opening, closing = ("{% generation %}", "{% endgeneration %}") if with_markers else ("", "")
    tokenizer.chat_template = _BODY.replace("{MARK_OPEN}", opening).replace("{MARK_CLOSE}",
                                                                            closing)
    return tokenizer


def _chat(user, reply, system=None):
    messages = [{"role": "system", "content": system}] if system else []
    return {"messages": [*messages, {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}]}


def _write(path: Path, rows) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _codes(report):
    return Counter(f.code for f in report.findings)


def test_duplicates_conflicts_and_leakage_with_lines_on_both_sides(tmp_path):
    train = _write(tmp_path / "train.jsonl", [
        _chat("what is it", "yes"),       # 1
        _chat("the cat", "no"),           # 2
        _chat("what is it", "yes"),       # 3 exact duplicate of 1
        _chat("The  Cat", "maybe"),       # 4 same normalised prompt as 2, other answer
        _chat("a dog ran", "yes"),        # 5
    ])
    evaluation = _write(tmp_path / "eval.jsonl", [
        _chat("hello", "yes"),            # 1
        _chat("A dog  ran", "yes"),       # 2 leaks train line 5
    ])
    report = lint_splits(load_split(train), load_split(evaluation), task="generation")
    by_code = {f.code: f for f in report.findings}
    assert "exact duplicate records on lines 1, 3" in by_code["duplicate"].message
    conflict = by_code["conflicting_answers"]
    assert conflict.line == 2 and "lines 2, 4" in conflict.message
    leak = by_code["leakage"]
    assert (leak.path, leak.line) == (str(evaluation), 2)
    assert f"{train} line 5" in leak.message
    assert not report.errors


def test_label_table_imbalance_and_unseen_labels(tmp_path):
    labels = ["positive"] * 12 + ["negative"] * 2 + ["neutral"] * 1
    train_rows = [_chat(f"what is it {'very ' * i}", label) for i, label in enumerate(labels)]
    eval_rows = [_chat("hello", "positive"), _chat("a cat", "maybe"), _chat("a dog", "maybe")]
    train = load_split(_write(tmp_path / "train.jsonl", train_rows), task="classification")
    evaluation = load_split(_write(tmp_path / "eval.jsonl", eval_rows), task="classification")
    report = lint_splits(train, evaluation, task="classification")
    expected_train = Counter(labels)
    table = {row["label"]: row for row in report.labels}
    assert {k: v["train"] for k, v in table.items()} == {**expected_train, "maybe": 0}
    assert table["positive"]["train_share"] == pytest.approx(12 / 15)
    assert table["maybe"]["eval"] == 2
    codes = _codes(report)
    assert codes["label_imbalance"] == 1 and codes["unseen_label"] == 1
    unseen = next(f for f in report.findings if f.code == "unseen_label")
    assert unseen.line == 2 and "lines 2, 3" in unseen.message
    assert codes["too_few"] == 1  # 15 < 50 for classification


def test_too_few_thresholds_follow_the_guide(tmp_path):
    rows = [_chat(f"what is it {'very ' * i}", "yes" if i % 2 else "no") for i in range(60)]
    split = load_split(_write(tmp_path / "t.jsonl", rows))
    assert _codes(lint_splits(split, task="classification"))["too_few"] == 0
    assert _codes(lint_splits(split, task="generation"))["too_few"] == 1
    assert _codes(lint_splits(split, task="complex"))["too_few"] == 1


def test_inconsistent_system_prompts(tmp_path):
    rows = [_chat("hello", "yes", "be brief")] * 3 + [_chat("the cat", "no", "be long")]
    rows += [_chat("a dog", "no")]
    report = lint_splits(load_split(_write(tmp_path / "t.jsonl", rows)), task="generation")
    found = [f for f in report.findings if f.code == "inconsistent_system_prompt"]
    assert sorted(f.line for f in found) == [4, 5]


def test_strict_turns_warnings_into_errors_and_cli_exit_code(tmp_path, capsys):
    path = _write(tmp_path / "t.jsonl", [_chat("hello", "yes"), _chat("hello", "yes")])
    assert main(["data", "lint", str(path), "--task", "generation"]) == 0
    assert main(["data", "lint", str(path), "--task", "generation", "--strict"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1: field 'messages': exact duplicate records on lines 1, 2" in out
    assert f"{path}:1: warning: field 'messages': exact duplicate records" in out  # not strict


def test_lint_cli_prints_table_percentiles_and_handles_bad_data(tmp_path, capsys):
    train = _write(tmp_path / "train.jsonl",
                   [_chat("hello", "yes"), _chat("a cat", "no"), _chat("a dog", "yes")])
    code = main(["data", "lint", str(train), "--eval", str(train), "--task", "classification"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| label" in out and "| yes" in out and "p90" in out and "estimated" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": 3}\n')
    assert main(["data", "lint", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:1: field 'messages'" in err and "Traceback" not in err


def test_too_long_uses_the_candidates_tokenizer(tmp_path):
    tokenizer = word_tokenizer()
    rows = [_chat("the cat sat on a mat", "yes"), _chat("hello", "no")]
    split = load_split(_write(tmp_path / "t.jsonl", rows))
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True,
                                                 return_dict=True)["input_ids"]) for r in rows]
    limit = (lengths[0] + lengths[1]) // 2
    report = lint_splits(split, task="generation", tokenizer=tokenizer, max_length=limit)
    too_long = [f for f in report.findings if f.code == "too_long"]
    assert [f.line for f in too_long] == [1]
    assert f"{lengths[0]} tokens" in too_long[0].message
    assert report.counts_exact and report.truncation.truncated == 1


def test_normalise_text_is_idempotent_and_ignores_case_and_spacing():
    assert normalise_text("  The\tCAT \n sat ") == "the cat sat"
    assert normalise_text(normalise_text("ＡＢＣ  d")) == normalise_text("ＡＢＣ  d") == "abc d"


def _examples(rows):
    return [Example(f"r{i}", r["messages"]) for i, r in enumerate(rows)]


def test_fallback_mask_equals_generation_marker_mask():
    with_markers, without = word_tokenizer(True), word_tokenizer(False)
    conversations = [
        _chat("the cat", "yes", "be brief")["messages"],
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "no"},
         {"role": "user", "content": "what is it"}, {"role": "assistant", "content": "a mat"}],
    ]
    for messages in conversations:
        assert assistant_mask(without, messages) == assistant_mask(with_markers, messages)
        assert sum(assistant_mask(with_markers, messages)) > 0


def test_count_truncation_counts_truncated_and_fully_masked_rows():
    tokenizer = word_tokenizer()
    long_prompt = " ".join(["very"] * 30)
    rows = [_chat("hello", "yes"), _chat(long_prompt, "no"), _chat("the cat", "very " * 20)]
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True,
                                                 return_dict=True)["input_ids"]) for r in rows]
    max_length = 20
    report = count_truncation(_examples(rows), tokenizer, max_length)
    assert report.lengths == lengths
    assert report.truncated_ids == [f"r{i}" for i, n in enumerate(lengths) if n > max_length]
    assert report.dropped_ids == ["r1"]  # its prompt alone fills the first 20 tokens
    keep_end = count_truncation(_examples(rows), tokenizer, max_length, truncation_mode="keep_end")
    assert keep_end.dropped == 0


@pytest.mark.slow
def test_count_truncation_agrees_with_sft_trainer(tmp_path):
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    tokenizer = word_tokenizer()
    long_prompt = " ".join(["very"] * 25)
    rows = ([_chat("hello", "yes"), _chat(long_prompt, "no"), _chat("the cat", "very " * 20),
             _chat(long_prompt + " cat", "maybe"), _chat("a dog ran", "no")])
    max_length = 18
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64))
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_length=max_length,
                     assistant_only_loss=True, report_to="none", bf16=False, use_cpu=True,
                     disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer,
                         train_dataset=Dataset.from_list(rows))
    kept = trainer.train_dataset
    report = count_truncation(_examples(rows), tokenizer, max_length)
    assert report.dropped == 2
    assert len(kept) == len(rows) - report.dropped
    kept_truncated = sum(len(ids) == max_length for ids in kept["input_ids"])
    dropped_truncated = len(set(report.dropped_ids) & set(report.truncated_ids))
    assert kept_truncated == report.truncated - dropped_truncated


def test_cli_with_a_saved_tokenizer_counts_exactly(tmp_path, capsys):
    tokenizer_dir = tmp_path / "tok"
    word_tokenizer().save_pretrained(tokenizer_dir)
    path = _write(tmp_path / "t.jsonl", [_chat("the cat sat on a mat", "yes"),
                                         _chat("hello", "no")])
    assert main(["data", "validate", "--json", "--tokenizer", str(tokenizer_dir),
                 str(path)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["files"][0]["token_counts"] == "exact"
    assert main(["data", "lint", str(path), "--tokenizer", str(tokenizer_dir),
                 "--max-length", "8", "--task", "generation"]) == 0
    out = capsys.readouterr().out
    assert "token lengths per example (exact" in out
    assert "truncation: max_length 8: 1 of 2 rows truncated" in out
    assert f"{path}:1: warning: field 'messages':" in out
    assert main(["data", "validate", "--tokenizer", str(tmp_path / "none"), str(path)]) == 3
    err = capsys.readouterr().err
    assert "cannot load tokenizer" in err and "Traceback" not in err
