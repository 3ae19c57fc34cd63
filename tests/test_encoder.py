"""Encoder classification candidates on a tiny BERT built offline (WordPiece trained on fixture
text): LoRA SEQ_CLS adapters, label maps, batched inference, mean pooling, fingerprints, the spec
pipeline with its cache, and the errors bad configuration gets."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import DatasetError, HarnessError, SpecError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LABELS = ["positive", "negative"]


def _texts(split, n=None):
    from harness.backends.encoder.inference import last_user_text

    return [last_user_text(ex.prompt) for ex in split.examples[:n]]


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A BertModel (hidden 32, 2 layers) with a WordPiece tokenizer trained on the fixture corpus."""
    from harness.backends.encoder.tiny import TinyEncoderConfig, build_tiny_encoder
    from harness.data.corpus import read_corpus

    out = tmp_path_factory.mktemp("tiny-encoder")
    config = TinyEncoderConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_hidden_layers=2)
    return build_tiny_encoder(out, read_corpus(FIXTURES / "corpus.txt"), config)


@pytest.fixture(scope="module")
def tiny_classifier(tiny_encoder, tmp_path_factory) -> Path:
    from harness.backends.encoder.models import init_classifier

    out = tmp_path_factory.mktemp("tiny-classifier")
    init_classifier(tiny_encoder, LABELS, out, seed=0)
    return out


# -- pure helpers ----------------------------------------------------------------------------
@given(st.lists(st.integers(0, 50), max_size=60), st.integers(1, 9))
def test_length_sorted_batches_cover_every_index_once_in_length_order(lengths, batch_size):
    from harness.backends.encoder.inference import length_sorted_batches

    batches = length_sorted_batches(lengths, batch_size)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= batch_size for batch in batches)
    assert [lengths[i] for i in flat] == sorted(lengths)


@given(st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8), min_size=1,
                max_size=6, unique=True))
def test_label_maps_are_inverse_and_follow_the_suite_order(labels):
    from harness.backends.encoder.models import label_maps

    id2label, label2id = label_maps(labels)
    assert [id2label[i] for i in range(len(labels))] == labels
    assert all(id2label[label2id[label]] == label for label in labels)


def test_duplicate_labels_are_refused():
    from harness.backends.encoder.models import label_maps

    with pytest.raises(SpecError, match="distinct"):
        label_maps(["positive", "positive"])


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 4), st.integers(1, 7), st.integers(1, 5), st.data())
def test_mean_pool_averages_the_unmasked_token_vectors(batch, seq, dim, data):
    import torch

    from harness.backends.encoder.inference import mean_pool

    values = data.draw(st.lists(st.floats(-10, 10), min_size=batch * seq * dim, max_size=batch * seq * dim))
    hidden = torch.tensor(values, dtype=torch.float64).reshape(batch, seq, dim)
    keep = [data.draw(st.integers(1, seq)) for _ in range(batch)]
    mask = torch.tensor([[1] * k + [0] * (seq - k) for k in keep])
    pooled = mean_pool(hidden, mask)
    for row, k in enumerate(keep):
        expected = [sum(float(hidden[row, t, d]) for t in range(k)) / k for d in range(dim)]
        assert pooled[row].tolist() == pytest.approx(expected, abs=1e-9)


def test_nearest_labels_takes_the_best_description_of_each_label():
    import torch

    from harness.backends.encoder.zeroshot import nearest_labels

    texts = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]), dim=1)
    # label 0 has two descriptions, label 1 one
    descriptions = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.5, 0.9], [0.0, 1.0]]), dim=1)
    owners = [0, 0, 1]
    expected = []
    for text in texts:
        sims = [float(text @ d) for d in descriptions]
        best = [max(s for s, o in zip(sims, owners, strict=True) if o == label) for label in (0, 1)]
        expected.append(0 if best[0] >= best[1] else 1)
    assert nearest_labels(texts, descriptions, owners) == expected


def test_description_table_defaults_to_label_names_and_names_bad_keys():
    from harness.backends.encoder.zeroshot import description_table

    table = description_table(LABELS, {"positive": ["good", "great"]}, "spec: x")
    assert table == {"positive": ("good", "great"), "negative": ("negative",)}
    with pytest.raises(SpecError, match=r"spec: x\.neutral: not one of the suite's labels"):
        description_table(LABELS, {"neutral": "meh"}, "spec: x")
    with pytest.raises(SpecError, match=r"spec: x\.negative: expected a non-empty string"):
        description_table(LABELS, {"negative": ""}, "spec: x")


def test_encoder_reference_precedence(monkeypatch):
    from harness.backends.encoder.models import ENCODER_ENV, encoder_reference

    monkeypatch.delenv(ENCODER_ENV, raising=False)
    assert encoder_reference({}) == "minilm"
    assert encoder_reference({"base_model": "/models/a"}) == "/models/a"
    monkeypatch.setenv(ENCODER_ENV, "/models/b")
    assert encoder_reference({"base_model": "/models/a"}) == "/models/b"
    assert encoder_reference({"base_model": "/models/a"}, "/models/c") == "/models/c"


def test_missing_minilm_package_names_the_install_command(monkeypatch):
    import importlib.resources

    from harness.backends.encoder.models import resolve_encoder_path

    def absent(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", absent)
    with pytest.raises(SpecError, match=r"pip install 'ft-harness\[examples\]'"):
        resolve_encoder_path("minilm")


def test_encoder_directory_without_config_is_refused(tmp_path):
    from harness.backends.encoder.models import resolve_encoder_path

    with pytest.raises(SpecError, match=r"no config\.json"):
        resolve_encoder_path(str(tmp_path))


# -- label maps and inference on the tiny model ----------------------------------------------
def test_label_maps_round_trip_through_the_saved_config(tiny_encoder, tmp_path, sentiment_eval):
    from transformers import AutoConfig

    from harness.backends.encoder.candidates import EncoderClassifier
    from harness.backends.encoder.inference import head_logits
    from harness.backends.encoder.models import init_classifier, load_classifier

    labels = ["neutral", "positive", "negative"]
    init_classifier(tiny_encoder, labels, tmp_path, seed=1)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.id2label == {0: "neutral", 1: "positive", 2: "negative"}
    assert config.label2id == {"neutral": 0, "positive": 1, "negative": 2}

    prompts = [ex.prompt for ex in sentiment_eval.examples[:24]]
    candidate = EncoderClassifier("c", "encoder-base", tmp_path, None, "fp", tuple(labels), batch_size=5)
    model, tokenizer = load_classifier(tmp_path)
    logits = head_logits(model, tokenizer, _texts(sentiment_eval, 24))
    assert candidate.predict_labels(prompts, labels) == [config.id2label[int(i)] for i in logits.argmax(1)]
    # a subset of the head's labels: the argmax over those columns only
    subset = ["negative", "positive"]
    restricted = logits[:, [2, 1]].argmax(1)
    assert candidate.predict_labels(prompts, subset) == [subset[int(i)] for i in restricted]
    assert [g.text for g in candidate.generate(prompts, None)] == candidate.predict_labels(prompts, labels)
    with pytest.raises(HarnessError, match="knows the labels"):
        candidate.predict_labels(prompts, ["positive", "mixed"])


def test_batched_predictions_equal_one_at_a_time(tiny_classifier, sentiment_eval):
    import torch

    from harness.backends.encoder.inference import head_logits, sentence_embeddings
    from harness.backends.encoder.models import load_classifier, load_encoder

    texts = _texts(sentiment_eval, 40)
    assert len({len(t) for t in texts}) > 10  # lengths differ, so batches really pad
    model, tokenizer = load_classifier(tiny_classifier)
    batched = head_logits(model, tokenizer, texts, batch_size=16)
    single = torch.cat([head_logits(model, tokenizer, [t], batch_size=1) for t in texts])
    assert torch.allclose(batched, single, atol=1e-5)
    assert batched.argmax(1).tolist() == single.argmax(1).tolist()

    encoder, tokenizer = load_encoder(tiny_classifier)
    a = sentence_embeddings(encoder, tokenizer, texts, batch_size=16)
    b = torch.cat([sentence_embeddings(encoder, tokenizer, [t], batch_size=1) for t in texts])
    assert torch.allclose(a, b, atol=1e-5)


def test_zero_shot_embedding_equals_a_direct_mean_pool(tiny_encoder, sentiment_eval):
    import torch

    from harness.backends.encoder.inference import sentence_embeddings
    from harness.backends.encoder.models import load_encoder

    texts = _texts(sentiment_eval, 12)
    model, tokenizer = load_encoder(tiny_encoder)
    embedded = sentence_embeddings(model, tokenizer, texts, batch_size=4)
    for text, row in zip(texts, embedded, strict=True):
        ids = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**ids).last_hidden_state[0]  # one text: no padding, plain mean over tokens
        vector = hidden.mean(dim=0)
        direct = vector / torch.linalg.vector_norm(vector)
        assert torch.allclose(row, direct, atol=1e-5)
    assert torch.allclose(embedded.norm(dim=1), torch.ones(len(texts)), atol=1e-5)


# -- training -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_lora_seq_cls_adapter_reloads_with_identical_predictions(tiny_classifier, sentiment_train,
                                                                 sentiment_eval, tmp_path):
    import torch

    from harness.backends.encoder.inference import head_logits
    from harness.backends.encoder.models import load_classifier
    from harness.backends.encoder.train import fit_encoder

    train = replace(sentiment_train, examples=sentiment_train.examples[:96])
    params = {"n_epochs": 2, "batch_size": 16, "learning_rate": 5e-3, "r": 4, "alpha": 8, "logging_steps": 2}
    model, tokenizer, summary = fit_encoder("lora", tiny_classifier, train, None, LABELS, params,
                                            tmp_path / "work", seed=0)
    assert 0 < summary.trainable_params < summary.total_params
    assert summary.train_loss is not None and summary.train_loss > 0
    assert [e["loss"] for e in summary.log_history if "loss" in e]
    assert summary.hyperparameters["r"] == 4 and summary.hyperparameters["labels"] == LABELS
    model.save_pretrained(tmp_path / "adapter")
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["task_type"] == "SEQ_CLS"
    assert "classifier" in adapter_config["modules_to_save"]

    texts = _texts(sentiment_eval, 32)
    trained = head_logits(model, tokenizer, texts)
    reloaded_model, reloaded_tokenizer = load_classifier(tiny_classifier, tmp_path / "adapter")
    reloaded = head_logits(reloaded_model, reloaded_tokenizer, texts)
    assert torch.allclose(trained, reloaded, atol=1e-5)
    assert trained.argmax(1).tolist() == reloaded.argmax(1).tolist()
    untrained = head_logits(*load_classifier(tiny_classifier), texts)
    assert not torch.allclose(untrained, reloaded, atol=1e-4)  # the adapter (and its head) took effect


def test_unknown_encoder_parameter_is_refused():
    from harness.backends.encoder.train import encoder_params

    with pytest.raises(SpecError, match="unknown encoder lora parameter 'rank'"):
        encoder_params("lora", {"rank": 8})
    with pytest.raises(SpecError, match="unknown encoder full parameter 'r'"):
        encoder_params("full", {"r": 8})


def test_a_training_label_outside_the_suite_names_file_and_line(sentiment_train, tiny_classifier):
    from harness.backends.encoder.models import label_ids, load_tokenizer
    from harness.backends.encoder.train import classification_dataset

    bad = sentiment_train.examples[3]
    messages = [*bad.messages[:-1], {"role": "assistant", "content": "mixed"}]
    examples = list(sentiment_train.examples[:10])
    examples[3] = replace(bad, messages=messages)
    split = replace(sentiment_train, examples=examples)
    with pytest.raises(DatasetError, match=rf"train\.jsonl:{bad.line}: .*'mixed'.*field 'messages\[-1\]\.content'"):
        label_ids(split, LABELS)
    aliased = label_ids(split, LABELS, {"mixed": "positive"})
    assert aliased[3] == 0
    dataset, truncated = classification_dataset(replace(split, examples=examples[:3]), LABELS,
                                                load_tokenizer(tiny_classifier), 8)
    assert truncated == 3 and all(len(ids) <= 8 for ids in dataset["input_ids"])


# -- the spec pipeline: kinds, cache, fingerprints ---------------------------------------------
def _spec_file(tmp_path: Path, encoder: Path, extra: str = "") -> Path:
    sentiment = FIXTURES / "sentiment"
    text = f"""
[harness]
seed = 0
batch_size = 16

[suites.enc]
task = "classification"
labels = ["positive", "negative"]
train = "{sentiment / 'train.jsonl'}"
validation = "{sentiment / 'validation.jsonl'}"
eval = "{sentiment / 'eval.jsonl'}"
scoring = "likelihood"

[suites.enc.candidates.base]
kind = "encoder-base"
base_model = "{encoder}"

[suites.enc.candidates.zeroshot]
kind = "encoder-zeroshot"
base_model = "{encoder}"
label_descriptions = {{ positive = "great, I loved it", negative = "awful, I hated it" }}

[suites.enc.candidates.lora]
kind = "encoder-lora"
base_model = "{encoder}"
params = {{ n_epochs = 1, batch_size = 32, learning_rate = 5e-3, r = 4, alpha = 8 }}

[suites.enc.candidates.full]
kind = "encoder-full"
base_model = "{encoder}"
params = {{ n_epochs = 1, batch_size = 32, learning_rate = 1e-3 }}
{extra}
"""
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _context(spec_path: Path, cache_dir: Path):
    from harness.cache import CacheStore
    from harness.context import BuildContext
    from harness.spec import load_spec

    spec = load_spec(spec_path)
    return BuildContext(spec=spec, cache=CacheStore(cache_dir), batch_size=16, log=lambda message: None)


@pytest.mark.slow
def test_encoder_kinds_build_evaluate_and_cache_through_the_spec(tiny_encoder, tmp_path, monkeypatch,
                                                                 sentiment_eval):
    from harness.backends.encoder.models import ENCODER_ENV
    from harness.kinds import build_candidate
    from harness.runner.evaluate import evaluate_candidate

    monkeypatch.delenv(ENCODER_ENV, raising=False)
    spec_path = _spec_file(tmp_path, tiny_encoder)
    ctx = _context(spec_path, tmp_path / "cache")
    suite = ctx.spec.suite("enc")
    eval_split = replace(sentiment_eval, examples=sentiment_eval.examples[:40])
    built = {name: build_candidate(ctx, suite, suite.candidate(name)) for name in suite.candidates}
    assert ctx.events.get("trained") == 2
    assert len({c.fingerprint for c in built.values()}) == 4
    for name in ("lora", "full"):
        training = built[name].training
        assert training.train_loss is not None and training.eval_loss is not None
        assert training.runtime_s > 0 and training.log_history
        assert any(note.startswith("validation accuracy") for note in training.notes)
    assert built["full"].training.trainable_params == built["full"].training.total_params
    assert built["lora"].training.trainable_params < built["lora"].training.total_params
    for name, candidate in built.items():
        assert getattr(candidate, "always_predicts_labels", False)
        result = evaluate_candidate(ctx, candidate, suite, eval_split)
        assert result.details["method"] == "classifier", name
        assert set(result.predictions) <= set(LABELS) and result.details["unparsed"] == 0
        assert 0.0 <= result.metrics["accuracy"] <= 1.0

    # a second session on the same cache trains nothing and sees the same models
    again = _context(spec_path, tmp_path / "cache")
    rebuilt = {name: build_candidate(again, suite, suite.candidate(name)) for name in suite.candidates}
    assert again.events.get("trained") is None
    assert {n: c.fingerprint for n, c in rebuilt.items()} == {n: c.fingerprint for n, c in built.items()}
    assert rebuilt["lora"].training.log_history == built["lora"].training.log_history

    # FT_ENCODER_MODEL points every encoder candidate elsewhere without touching the spec
    monkeypatch.setenv(ENCODER_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SpecError, match="nowhere"):
        build_candidate(_context(spec_path, tmp_path / "cache"), suite, suite.candidate("base"))


def test_fingerprint_follows_weight_content_not_location(tiny_encoder, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    from harness.backends.encoder.models import ENCODER_ENV
    from harness.kinds import build_candidate

    monkeypatch.delenv(ENCODER_ENV, raising=False)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_encoder, copy)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_encoder, changed)
    weights = load_file(changed / "model.safetensors")
    name = next(k for k in weights if k.endswith("query.weight"))
    weights[name][0, 0] += 0.5
    save_file(weights, changed / "model.safetensors", metadata={"format": "pt"})

    def fingerprints(encoder: Path) -> tuple[str, str]:
        folder = tmp_path / f"spec-{encoder.name}"
        folder.mkdir()
        ctx = _context(_spec_file(folder, encoder), tmp_path / "cache")
        suite = ctx.spec.suite("enc")
        return (build_candidate(ctx, suite, suite.candidate("base")).fingerprint,
                build_candidate(ctx, suite, suite.candidate("zeroshot")).fingerprint)

    original = fingerprints(tiny_encoder)
    assert fingerprints(copy) == original
    moved = fingerprints(changed)
    assert moved[0] != original[0] and moved[1] != original[1]


def test_bad_encoder_candidate_options_name_the_spec_key(tiny_encoder, tmp_path):
    from harness.kinds import build_candidate
    from harness.spec import load_spec

    at_load = {  # refused when the spec loads, before any candidate is built
        '[suites.enc.candidates.typo]\nkind = "encoder-base"\nbase_modle = "minilm"\n':
            r"suites\.enc\.candidates\.typo\.base_modle: unknown key",
        '[suites.enc.candidates.trained_zeroshot]\nkind = "encoder-zeroshot"\nparams = { n_epochs = 1 }\n':
            r"candidates\.trained_zeroshot\.params: .* takes no params",
    }
    for extra, message in at_load.items():
        with pytest.raises(SpecError, match=message):
            load_spec(_spec_file(tmp_path, tiny_encoder, extra))
    extra = """
[suites.enc.candidates.bad_descriptions]
kind = "encoder-zeroshot"
label_descriptions = { neutral = "meh" }
"""
    ctx = _context(_spec_file(tmp_path, tiny_encoder, extra), tmp_path / "cache")
    suite = ctx.spec.suite("enc")
    with pytest.raises(SpecError, match=r"candidates\.bad_descriptions\.label_descriptions\.neutral"):
        build_candidate(ctx, suite, suite.candidate("bad_descriptions"))
    generation = replace(suite, task="generation")
    with pytest.raises(SpecError, match="needs a classification suite"):
        build_candidate(ctx, generation, suite.candidate("base"))


def test_label_probabilities_are_torch_softmax_of_the_head_logits_in_the_asked_label_order(tiny_encoder, tmp_path,
                                                                                          sentiment_eval):
    """Calibration reads these: each row is torch.softmax over the asked labels' logits of an
    unbatched forward pass, rows sum to 1, and the columns follow the order the labels were asked in."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness.backends.encoder.candidates import EncoderClassifier
    from harness.backends.encoder.models import init_classifier

    head = ["neutral", "positive", "negative"]
    init_classifier(tiny_encoder, head, tmp_path, seed=3)
    prompts = [ex.prompt for ex in sentiment_eval.examples[:12]]
    candidate = EncoderClassifier("c", "encoder-base", tmp_path, None, "fp", tuple(head), batch_size=5)
    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    with torch.no_grad():
        logits = torch.cat([model(**tokenizer(t, truncation=True, max_length=128, return_tensors="pt")).logits
                            for t in _texts(sentiment_eval, 12)])
    assert logits.std() > 0  # a seeded head that really tells the labels apart

    asked = ["negative", "neutral", "positive"]
    got = torch.tensor(candidate.label_probabilities(prompts, asked), dtype=torch.float32)
    expected = torch.softmax(logits[:, [2, 0, 1]], dim=1)
    assert got.shape == (12, 3)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got.sum(dim=1), torch.ones(12), atol=1e-6)
    # a subset of the head's labels: softmax over those columns only, in the asked order
    pair = torch.tensor(candidate.label_probabilities(prompts, ["positive", "negative"]), dtype=torch.float32)
    assert torch.allclose(pair, torch.softmax(logits[:, [1, 2]], dim=1), atol=1e-5)
    assert candidate.label_probabilities([], asked) == []
    with pytest.raises(HarnessError, match="knows the labels"):
        candidate.label_probabilities(prompts, ["positive", "mixed"])
