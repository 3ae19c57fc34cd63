"""Out-of-memory fallback on every batched path: injected CUDA OOM halves the batch, outputs stay.

The forward (or ``generate``) of a real tiny model is wrapped to raise the errors torch raises on
CUDA (``torch.OutOfMemoryError``, ``RuntimeError("CUDA out of memory ...")``) for any batch with
more than ``k`` rows; the fallback must give the outputs of an un-faulted run at the batch size
it ends on, and a clear error naming the path and the remedies when even one row does not fit.
"""

from __future__ import annotations

import functools

import pytest

from harness.protocol import DecodeParams

pytestmark = pytest.mark.slow


def fault(monkeypatch, obj, name: str, limit: int, error) -> list[int]:
    """Make ``obj.name`` raise ``error`` for batches of more than ``limit`` rows; returns seen sizes."""
    original = getattr(obj, name)
    seen: list[int] = []

    @functools.wraps(original)  # keeps the signature the harness inspects (cache=, logits_to_keep=)
    def wrapped(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows = int(ids.shape[0])
        seen.append(rows)
        if rows > limit:
            raise error()
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, wrapped)
    return seen


def torch_oom():
    import torch

    return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def runtime_oom():
    return RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity)")


@pytest.fixture(scope="module")
def causal(tiny_base):
    from harness.backends.hf.inference import load_model

    return load_model(tiny_base, device="cpu")


def generation_path(monkeypatch, path: str) -> str:
    """Send greedy batches down ``path``: the harness's own greedy decoding (model forwards) or
    ``model.generate``; returns the method to fault."""
    from harness.backends.hf import greedy, inference

    # the prompts of a batch in one forward (no length buckets): each forward's rows are the batch's
    monkeypatch.setattr(greedy, "BUCKET_OVERHEAD_TOKENS", 10**9)
    if path == "generate":
        monkeypatch.setattr(inference, "greedy_supported", lambda *_: False)
        return "generate"
    return "forward"


@pytest.mark.parametrize("error", [torch_oom, runtime_oom])
@pytest.mark.parametrize("path", ["greedy", "generate"])
def test_generation_halves_the_batch_on_oom(causal, sentiment_eval, monkeypatch, error, path):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = causal
    prompts = [ex.prompt for ex in sentiment_eval.examples[:12]]
    params = DecodeParams(max_new_tokens=6)
    method = generation_path(monkeypatch, path)
    clean = generate_batch(model, tokenizer, prompts, params, batch_size=3)
    seen = fault(monkeypatch, model, method, 3, error)
    faulted = generate_batch(model, tokenizer, prompts, params, batch_size=12)
    assert [rows for rows in seen if rows > 1][:3] == [12, 6, 3]  # (the shared prefix runs as one row)
    assert [(g.text, g.completion_tokens) for g in faulted] == [(g.text, g.completion_tokens) for g in clean]
    assert all(g.batch_size == 3 for g in faulted)


@pytest.mark.parametrize("error", [torch_oom, runtime_oom])
@pytest.mark.parametrize("one_pass", [True, False])
def test_likelihood_halves_the_batch_on_oom(causal, sentiment_eval, monkeypatch, error, one_pass):
    from harness.backends.hf import likelihood

    model, tokenizer = causal
    if not one_pass:  # the two-pass path: its continuation pass has rows x labels rows
        monkeypatch.setattr(likelihood, "one_pass_supported", lambda *_: False)
    prompts = [ex.prompt for ex in sentiment_eval.examples[:10]]
    labels = ["positive", "negative"]
    ends_on = 4 if one_pass else 2  # the largest batch whose every forward has at most 4 rows
    clean = likelihood.label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=ends_on)
    seen = fault(monkeypatch, model, "forward", 4, error)
    faulted = likelihood.label_log_likelihoods(model, tokenizer, prompts, labels, batch_size=8)
    assert 8 in seen and max(s for s in seen[-3:]) <= 4
    assert faulted == clean


def test_oom_at_batch_size_one_is_a_clear_error(causal, sentiment_eval, monkeypatch):
    from harness.backends.batching import InferenceMemoryError
    from harness.backends.hf.inference import generate_batch
    from harness.backends.hf.likelihood import label_log_likelihoods
    from harness.errors import HarnessError

    model, tokenizer = causal
    prompts = [ex.prompt for ex in sentiment_eval.examples[:4]]
    fault(monkeypatch, model, "generate", 0, torch_oom)
    sampled = DecodeParams(max_new_tokens=4, temperature=0.7)  # sampling always runs model.generate
    with pytest.raises(InferenceMemoryError, match=r"generation at batch size 1.*--ft-batch-size") as info:
        generate_batch(model, tokenizer, prompts, sampled, batch_size=4, share_prefix=False)
    assert isinstance(info.value, HarnessError) and isinstance(info.value, MemoryError)
    with pytest.raises(InferenceMemoryError, match=r"generation \(the \d+-token prefix all prompts share\) "
                                                   r"at batch size 1"):
        fault(monkeypatch, model, "forward", 0, torch_oom)
        generate_batch(model, tokenizer, prompts, DecodeParams(max_new_tokens=4), batch_size=4)
    fault(monkeypatch, model, "forward", 0, runtime_oom)
    with pytest.raises(InferenceMemoryError, match=r"label likelihood scoring.*at batch size 1"):
        label_log_likelihoods(model, tokenizer, prompts, ["positive", "negative"], batch_size=4)


@pytest.mark.parametrize("path", ["greedy", "generate"])
def test_other_errors_are_not_retried(causal, sentiment_eval, monkeypatch, path):
    from harness.backends.hf.inference import generate_batch

    model, tokenizer = causal
    seen = fault(monkeypatch, model, generation_path(monkeypatch, path), 0, lambda: RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        generate_batch(model, tokenizer, [ex.prompt for ex in sentiment_eval.examples[:4]], DecodeParams(),
                       share_prefix=False)
    assert seen == [4]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, sentiment_train):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness.backends.encoder.inference import last_user_text
    from harness.backends.encoder.tiny import TinyEncoderConfig, build_tiny_encoder

    lines = [last_user_text(ex.prompt) for ex in sentiment_train.examples]
    path = build_tiny_encoder(tmp_path_factory.mktemp("enc"), lines, TinyEncoderConfig(vocab_size=300))
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=2)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(path)), lines[:20]


@pytest.mark.parametrize("error", [torch_oom, runtime_oom])
def test_encoder_halves_the_batch_on_oom(encoder, monkeypatch, error):
    import torch

    from harness.backends.encoder.inference import head_logits

    model, tokenizer, texts = encoder
    clean = head_logits(model, tokenizer, texts, batch_size=4)
    seen = fault(monkeypatch, model, "forward", 4, error)
    faulted = head_logits(model, tokenizer, texts, batch_size=16)
    assert seen[:3] == [16, 8, 4]
    assert torch.equal(faulted, clean)
