"""Real chat templates: LoRA and full training, prompted few-shot, generation and label likelihood
on tiny models with ChatML, Llama-3 headers, and a template without ``{% generation %}`` markers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.backends.hf.templates import FORMATS

pytestmark = pytest.mark.slow

POSITIVE = ["the soup was tasty and the staff were kind", "a lovely quiet room with a view of the sea",
            "the staff were kind and the room was lovely", "tasty soup and a lovely view"]
NEGATIVE = ["the film was dull and far too long", "the service was slow and the food was cold",
            "the food was cold and the film was dull", "slow service and far too long"]
LABELS = ("positive", "negative")


def plain_chatml():
    """ChatML as many hub templates ship it: no generation markers."""
    fmt = FORMATS["chatml"]
    template = fmt.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    return dataclasses.replace(fmt, name="chatml-plain", chat_template=template)


STYLES = {"chatml": FORMATS["chatml"], "llama3": FORMATS["llama3"], "plain": plain_chatml()}
MASKS = {"chatml": "assistant-only (template markers)", "llama3": "assistant-only (template markers)",
         "plain": "completion-only (harness mask)"}


def rows(n: int, offset: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        label = LABELS[i % 2]
        texts = POSITIVE if label == "positive" else NEGATIVE
        text = f"{texts[(i // 2 + offset) % 4]} {i + offset}"
        out.append({"messages": [{"role": "system", "content": "classify the sentiment of the review"},
                                 {"role": "user", "content": text}, {"role": "assistant", "content": label}]})
    return out


def write_project(root: Path, style: str) -> Path:
    from harness.backends.hf.templates import DEFAULT_LINES, save_format_model

    lines = [*DEFAULT_LINES, *POSITIVE, *NEGATIVE]
    model = save_format_model(root / "model", STYLES[style], lines=lines)
    for name, n, offset in (("train", 24, 0), ("validation", 8, 100), ("eval", 12, 200)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(n, offset)), encoding="utf-8")
    spec = root / "spec.toml"
    spec.write_text(f"""
[harness]
base_model = "{model}"
seed = 0
batch_size = 8

[suites.s]
task = "classification"
labels = ["positive", "negative"]
train = "train.jsonl"
validation = "validation.jsonl"
eval = "eval.jsonl"
decode = {{ max_new_tokens = 3 }}

[suites.s.candidates.base]
kind = "base"
scoring = "likelihood"

[suites.s.candidates.zeroshot]
kind = "prompted"
base_kind = "base"
instruction = "answer positive or negative"

[suites.s.candidates.fewshot]
kind = "prompted"
base_kind = "base"
shots = 4
scoring = "likelihood"

[suites.s.candidates.lora]
kind = "lora"
params = {{ n_epochs = 2, batch_size = 8, learning_rate = 3e-3, r = 4, alpha = 8, logging_steps = 1 }}

[suites.s.candidates.full]
kind = "full"
params = {{ n_epochs = 1, batch_size = 8, learning_rate = 1e-3, logging_steps = 1 }}
""", encoding="utf-8")
    return spec


@pytest.mark.parametrize("style", list(STYLES))
def test_train_prompt_generate_and_score_on_each_template(style, tmp_path):
    from harness.session import EvalSession, SessionOptions

    spec = write_project(tmp_path, style)
    session = EvalSession(SessionOptions(spec_path=spec, root_dir=tmp_path, cache_dir=tmp_path / "cache",
                                         reports_dir=tmp_path / "reports"))
    try:
        results = {name: session.evaluate("s", name) for name in ("base", "zeroshot", "fewshot", "lora", "full")}
    finally:
        session.close()
    train_ids = {f"train-{i}" for i in range(1, 25)}
    for name in ("lora", "full"):
        training = results[name].training
        assert training["hyperparameters"]["loss_mask"] == MASKS[style], name
        assert training["rows_dropped"] == 0 and training["train_loss"] > 0, training
        assert results[name].details["method"] == "generate"
    for name in ("base", "fewshot"):
        assert results[name].details["method"] == "likelihood"
        assert set(results[name].predictions) <= set(LABELS)
        assert results[name].usage["prompt_tokens"] > 0  # label-scored requests are counted too
    shots = results["fewshot"].details["prompt"]
    assert len(shots["shot_ids"]) == 4 and set(shots["shot_ids"]) <= train_ids
    assert sorted(shots["shot_labels"]) == ["negative", "negative", "positive", "positive"]
    # four shots are four more user/assistant turns in every request
    assert results["fewshot"].usage["prompt_tokens"] > results["base"].usage["prompt_tokens"] + 4 * 12 * 4
    assert results["zeroshot"].details["method"] == "generate"
    assert results["zeroshot"].usage["completion_tokens"] > 0
    assert results["zeroshot"].fingerprint != results["fewshot"].fingerprint != results["base"].fingerprint


@pytest.mark.parametrize("style", list(STYLES))
def test_the_loss_covers_exactly_the_assistant_reply_and_its_end_of_turn(style, tmp_path):
    from transformers import AutoTokenizer

    from harness.backends.hf.lora import to_chat_dataset, to_masked_dataset
    from harness.data.records import Example, Split

    spec = write_project(tmp_path, style)
    tokenizer = AutoTokenizer.from_pretrained(str(spec.parent / "model"))
    example = Example("train-1", rows(1)[0]["messages"])
    split = Split("train", "", [example], "f")
    if style == "plain":
        row = to_masked_dataset(split, tokenizer)[0]
        kept = [t for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if m]
    else:
        rendered = tokenizer.apply_chat_template(to_chat_dataset(split)[0]["messages"], tokenize=True,
                                                 return_dict=True, return_assistant_tokens_mask=True)
        kept = [t for t, m in zip(rendered["input_ids"], rendered["assistant_masks"], strict=True) if m]
    text = tokenizer.decode(kept)
    assert text.startswith("positive") and STYLES[style].end_of_turn in text, text
    assert "classify" not in text and "user" not in text
