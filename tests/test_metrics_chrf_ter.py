"""chrF, chrF++ and TER as corpus metrics: equal to sacrebleu's corpus_chrf / corpus_ter on the
cases of sacrebleu's own tests (test/test_chrf.py, test/test_ter.py), additive statistics, corpus
CIs that contain the value, and gated with the corpus bootstrap (TER: lower is better)."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.gate import GateConfig, check
from harness.gate.baseline import Baseline, entry_from_result
from harness.gate.verdict import IMPROVED, PASS, REGRESSED
from harness.metrics.chrf_ter_metric import SacrebleuCorpusMetric
from harness.metrics.registry import METRICS, corpus_metric
from harness.report.intervals import metric_intervals
from harness.results import EvalResult
from harness.runner.scoring import score_generation
from harness.stats import resample_counts

# sacrebleu test/test_chrf.py: (hypotheses, references, published corpus chrF, beta 3, eps smoothing)
CHRF_CASES = [
    (["abcdefg"], ["hijklmnop"], 0.0),
    (["a"], ["b"], 0.0),
    ([""], ["b"], 0.0),
    ([""], ["ref"], 0.0),
    ([""], ["reference"], 0.0),
    (["aa"], ["ab"], 8.3333),
    (["a", "b"], ["a", "c"], 8.3333),
    (["a"], ["a"], 16.6667),
    (["a b c"], ["a b c"], 50.0),
    (["a b c"], ["abc"], 50.0),
    ([" risk assessment must be made of those who are qualified and expertise in the sector - these are the "
      "scientists ."],
     ["risk assessment has to be undertaken by those who are qualified and expert in that area - that is the "
      "scientists ."], 63.361730),
    ([" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "],
     ["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."], 64.1302698),
    (["Niemand hat die Absicht, eine Mauer zu errichten"], ["Niemand hat die Absicht, eine Mauer zu errichten"],
     100.0),
]
# sacrebleu test/test_chrf.py, effective order (no eps smoothing, sacrebleu's default), beta 3
CHRF_EFFECTIVE_ORDER_CASES = [
    (["a"], ["a"], 100.0),
    ([""], ["reference"], 0.0),
    (["a b c"], ["a b c"], 100.0),
    (["a b c"], ["abc"], 100.0),
    ([""], ["c"], 0.0),
    (["a", "b"], ["a", "c"], 50.0),
    (["aa"], ["ab"], 25.0),
]
# sacrebleu test/test_ter.py: (hypotheses, references, published corpus TER as a fraction)
TER_CASES = [
    (["aaaa bbbb cccc dddd"], ["aaaa bbbb cccc dddd"], 0.0),
    (["dddd eeee ffff"], ["aaaa bbbb cccc"], 1.0),
    ([""], ["a"], 1.0),
    (["d e f g h a b c"], ["a b c d e f g h"], 1 / 8),
    ([
        'wählen Sie " Bild neu berechnen , " um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , '
        'damit das Bild ungefähr dieselbe Größe aufweist wie die andere Größe .',
        'wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des '
        'Aufgabenbedienfelds die Option " Alle Aufgaben aktualisieren . "',
        'klicken Sie auf der Registerkarte " Optionen " auf die Schaltfläche " Benutzerdefiniert " und geben Sie '
        'Werte für " Fehlerkorrektur-Level " und " Y / X-Verhältnis " ein .',
        "Sie können beispielsweise ein Dokument erstellen , das ein Auto über die Bühne enthält .",
        'wählen Sie im Dialogfeld " Neu aus Vorlage " eine Vorlage aus und klicken Sie auf " Neu . "',
    ], [
        'wählen Sie " Bild neu berechnen , " um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , '
        "damit die Darstellung des Bildes in einer anderen Größe beibehalten wird .",
        'wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des '
        'Aufgabenbedienfelds die Option " Alle Aufgaben aktualisieren . "',
        'klicken Sie auf der Registerkarte " Optionen " auf die Schaltfläche " Benutzerdefiniert " und geben Sie für '
        '" Fehlerkorrektur-Level " und " Y / X-Verhältnis " niedrigere Werte ein .',
        "Sie können beispielsweise ein Dokument erstellen , das ein Auto enthalt , das sich über die Bühne bewegt .",
        'wählen Sie im Dialogfeld " Neu aus Vorlage " eine Vorlage aus und klicken Sie auf " Neu . "',
    ], 0.136),
]
ALL_PAIRS = [(h, r) for h, r, _ in CHRF_CASES + CHRF_EFFECTIVE_ORDER_CASES + TER_CASES]
WORDS = ["the", "a", "small", "red", "blue", "green", "cotton", "wool", "shirt", "bag", "cup", "lamp", "soft"]


@pytest.mark.parametrize(("hypotheses", "references", "published"), CHRF_CASES)
def test_chrf_with_eps_smoothing_equals_sacrebleu_on_its_cases(hypotheses, references, published):
    metric = SacrebleuCorpusMetric("chrf", "CHRF", "corpus chrF", np.int64, beta=3, eps_smoothing=True)
    ours = metric.score(hypotheses, references, {}).score
    theirs = sacrebleu.corpus_chrf(hypotheses, [references], beta=3, eps_smoothing=True).score
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert abs(ours - published) < 1e-4


@pytest.mark.parametrize(("hypotheses", "references", "published"), CHRF_EFFECTIVE_ORDER_CASES)
def test_chrf_effective_order_equals_sacrebleu_on_its_cases(hypotheses, references, published):
    metric = SacrebleuCorpusMetric("chrf", "CHRF", "corpus chrF", np.int64, beta=3)
    ours = metric.score(hypotheses, references, {}).score
    assert ours == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references], beta=3).score, abs=1e-9)
    assert abs(ours - published) < 1e-4


@pytest.mark.parametrize(("hypotheses", "references"), ALL_PAIRS)
def test_registered_chrf_and_chrfpp_equal_sacrebleu_on_every_case(hypotheses, references):
    for name, word_order in (("chrf", 0), ("chrfpp", 2)):
        ours = corpus_metric(name).score(hypotheses, references, {}).score
        theirs = sacrebleu.corpus_chrf(hypotheses, [references], word_order=word_order).score
        assert ours == pytest.approx(theirs, abs=1e-9), name


@pytest.mark.parametrize(("hypotheses", "references", "published"), TER_CASES)
def test_registered_ter_equals_sacrebleu_corpus_ter_on_its_cases(hypotheses, references, published):
    ours = corpus_metric("ter").score(hypotheses, references, {})
    assert ours.score == pytest.approx(sacrebleu.corpus_ter(hypotheses, [references]).score, abs=1e-9)
    assert abs(ours.score - 100 * published) < 1e-3
    sentences = [sacrebleu.sentence_ter(h, [r]).score for h, r in zip(hypotheses, references, strict=True)]
    assert ours.sentence_scores == pytest.approx(sentences, abs=1e-9)


def test_per_example_scores_are_sacrebleu_sentence_scores():
    hyps, refs = corpus(20, 3, 0.4)
    _, per_example, signatures, _ = score_generation(hyps, refs, ["chrf", "chrfpp", "ter"])
    assert per_example["sentence_chrf"] == pytest.approx([sacrebleu.sentence_chrf(h, [r]).score
                                                          for h, r in zip(hyps, refs, strict=True)], abs=1e-9)
    chrfpp = sacrebleu.metrics.CHRF(word_order=2)
    assert per_example["sentence_chrfpp"] == pytest.approx([chrfpp.sentence_score(h, [r]).score
                                                            for h, r in zip(hyps, refs, strict=True)], abs=1e-9)
    assert signatures["chrfpp"].startswith("chrfpp:corpus|") and "nw:2" in signatures["chrfpp"]
    assert "tok:tercom" in signatures["ter"]


def corpus(n: int, seed: int, noise: float) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    references = [" ".join(rng.choice(WORDS, size=rng.integers(5, 11))) for _ in range(n)]
    hypotheses = [" ".join(w if rng.random() > noise else str(rng.choice(WORDS)) for w in ref.split())
                  for ref in references]
    return hypotheses, references


@pytest.mark.parametrize("name", ["chrf", "chrfpp", "ter"])
def test_resampled_statistics_equal_sacrebleu_on_each_resampled_corpus(name):
    hyps, refs = corpus(10, 1, 0.4)
    metric = corpus_metric(name)
    stats = metric.score(hyps, refs, {}).stats
    ours = metric.resampled_scores(stats, resample_counts(10, 8, seed=3))
    indices = np.random.default_rng(3).integers(0, 10, (8, 10))
    for r in range(8):
        drawn_h, drawn_r = [hyps[i] for i in indices[r]], [[refs[i] for i in indices[r]]]
        theirs = (sacrebleu.corpus_ter(drawn_h, drawn_r) if name == "ter" else
                  sacrebleu.corpus_chrf(drawn_h, drawn_r, word_order=2 if name == "chrfpp" else 0)).score
        assert ours[r] == pytest.approx(theirs, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.text("abc ", max_size=12), st.text("abc ", min_size=1, max_size=12)),
                min_size=2, max_size=6), st.integers(1, 5))
def test_statistics_of_two_parts_add_up_to_the_whole(pairs, cut):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    cut = min(cut, len(pairs) - 1)
    for name in ("chrf", "chrfpp", "ter"):
        metric = corpus_metric(name)
        whole = metric.score(hyps, refs, {}).score
        summed = metric.score(hyps[:cut], refs[:cut], {}).stats.sum(axis=0) + \
            metric.score(hyps[cut:], refs[cut:], {}).stats.sum(axis=0)
        assert metric.score_from_stats(summed) == pytest.approx(whole, abs=1e-9)


def _result(candidate: str, hyps: list[str], refs: list[str], metrics: list[str]) -> EvalResult:
    scored, per_example, signatures, details = score_generation(hyps, refs, metrics)
    n = len(refs)
    return EvalResult(suite="descriptions", candidate=candidate, kind="lora", fingerprint="m" * 64,
                      task="generation", split="eval", split_fingerprint="e" * 64,
                      example_ids=[f"ex-{i}" for i in range(n)], inputs=[""] * n, references=refs,
                      predictions=hyps, metrics=scored, per_example=per_example, signatures=signatures,
                      details=details)


@pytest.mark.parametrize("noise", [0.0, 0.3, 0.8])
def test_corpus_intervals_are_of_the_corpus_score_and_contain_it(noise):
    hyps, refs = corpus(60, 4, noise)
    result = _result("lora", hyps, refs, ["chrf", "chrfpp", "ter"])
    intervals = metric_intervals(result)
    for name in ("chrf", "chrfpp", "ter"):
        assert intervals[name].of_aggregate and intervals[name].per_example_mean == result.metrics[name]
        assert intervals[name].low <= result.metrics[name] <= intervals[name].high


def test_chrf_chrfpp_and_ter_gate_at_corpus_level():
    # 150 sentences: unchanged ones must bound the drop within 3 points although one changed sentence
    # could move the corpus score by its jackknife range (README, "Statistics")
    hyps, refs = corpus(150, 5, 0.15)
    worse, _ = corpus(150, 5, 0.8)
    names = ["chrf", "chrfpp", "ter"]
    assert all(METRICS[name].paired for name in names) and not METRICS["ter"].higher_is_better
    accepted = _result("lora", hyps, refs, names)
    baseline = Baseline(entries={("descriptions", "lora"): entry_from_result(accepted, versions={}, date="d")})
    config = GateConfig.from_mapping({"metrics": {name: {"tolerance": 3.0} for name in names}})
    same = check(_result("lora", hyps, refs, names), baseline, config)
    assert {r.metric: r.verdict for r in same} == dict.fromkeys(names, PASS)
    assert all(r.details["kind"] == "corpus" and "jackknife" in r.details["method"] for r in same)
    dropped = {r.metric: r for r in check(_result("lora", worse, refs, names), baseline, config)}
    assert {name: r.verdict for name, r in dropped.items()} == dict.fromkeys(names, REGRESSED)
    ter_rise = sacrebleu.corpus_ter(worse, [refs]).score - sacrebleu.corpus_ter(hyps, [refs]).score
    assert ter_rise > 3.0
    assert dropped["ter"].details["delta"] == pytest.approx(-ter_rise)  # Δ is the improvement: TER rose
    assert dropped["ter"].current == pytest.approx(sacrebleu.corpus_ter(worse, [refs]).score)
    chrf_drop = sacrebleu.corpus_chrf(worse, [refs]).score - sacrebleu.corpus_chrf(hyps, [refs]).score
    assert dropped["chrf"].details["delta"] == pytest.approx(chrf_drop)


def test_a_lower_ter_improves_the_gate():
    worse, refs = corpus(80, 6, 0.8)
    better, _ = corpus(80, 6, 0.05)
    baseline = Baseline(entries={("descriptions", "lora"): entry_from_result(_result("lora", worse, refs, ["ter"]),
                                                                             versions={}, date="d")})
    config = GateConfig.from_mapping({"metrics": {"ter": {"tolerance": 1.0}}})
    [record] = check(_result("lora", better, refs, ["ter"]), baseline, config)
    assert record.verdict == IMPROVED
    assert record.details["baseline_mean"] == pytest.approx(sacrebleu.corpus_ter(worse, [refs]).score)


def test_the_baseline_keeps_ters_averaged_reference_lengths():
    """TER's statistics hold the average reference length: with two references of different lengths it
    is fractional, and the stored baseline gates on the same corpus TER the run reported."""
    hyps = ["a b c", "d e"]
    refs = [["a b c d", "a"], ["d e f", "d"]]
    result = _result("lora", hyps, refs, ["ter"])
    stored = entry_from_result(result, versions={}, date="d").metrics["ter"].stats
    assert stored is not None and stored["ex-0"][1] == 2.5 and stored["ex-1"][1] == 2
    theirs = sacrebleu.corpus_ter(hyps, [[r[0] for r in refs], [r[1] for r in refs]]).score
    assert corpus_metric("ter").subset_score([stored[i] for i in result.example_ids]) == pytest.approx(theirs, abs=1e-9)
    assert result.metrics["ter"] == pytest.approx(theirs, abs=1e-9)
