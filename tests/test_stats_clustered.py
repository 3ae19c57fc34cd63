"""Cluster-robust margin tests (Miller 2024, arXiv:2411.00640): statsmodels' clustered OLS is the
independent check, a correlated fixture widens the interval, and the gate and spec carry it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from harness.errors import SpecError
from harness.gate import GateConfig, check
from harness.options import SessionOptions
from harness.session import EvalSession
from harness.stats import margin_test
from harness.stats.clustered import FEW_CLUSTERS, cluster_variance
from tests.test_gate import baseline_of, make_result


def _statsmodels(differences, clusters, alpha=0.05):
    """Intercept-only OLS of the differences with statsmodels' CR1 cluster covariance and t(G-1)."""
    fit = sm.OLS(np.asarray(differences, dtype=float), np.ones(len(differences))).fit(
        cov_type="cluster", cov_kwds={"groups": np.unique(clusters, return_inverse=True)[1]}, use_t=True)
    low, high = fit.conf_int(alpha=2 * alpha)[0]
    return {"se": float(fit.bse[0]), "lower": float(low), "upper": float(high), "df": float(fit.df_resid_inference)}


def correlated_fixture(n_clusters=30, size=3, seed=7):
    """Baseline and current scores of ``size`` items per cluster whose differences share a cluster effect."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat([f"doc-{g:02d}" for g in range(n_clusters)], size)
    shared = np.repeat(rng.normal(0, 10, n_clusters), size)
    baseline = rng.normal(50, 5, n_clusters * size)
    current = baseline + shared + rng.normal(0, 1, n_clusters * size)
    return baseline, current, clusters


def test_the_clustered_interval_equals_statsmodels_cluster_robust_ols():
    a, b, clusters = correlated_fixture()
    test = margin_test(a, b, margin=3.0, alpha=0.05, clusters=clusters)
    want = _statsmodels(b - a, clusters)
    assert want["df"] == 29 and test.clusters == 30
    assert test.lower == pytest.approx(want["lower"], abs=1e-9)
    assert test.upper == pytest.approx(want["upper"], abs=1e-9)
    t_margin = (test.difference + 3.0) / want["se"]
    assert test.p_noninferior == pytest.approx(sps.t.sf(t_margin, 29), abs=1e-9)
    assert test.p_inferior == pytest.approx(sps.t.cdf(t_margin, 29), abs=1e-9)
    assert test.p_superior == pytest.approx(sps.t.sf(test.difference / want["se"], 29), abs=1e-9)


def test_three_correlated_items_per_cluster_widen_the_interval_and_the_design_effect_exceeds_one():
    a, b, clusters = correlated_fixture()
    clustered = margin_test(a, b, margin=3.0, clusters=clusters)
    independent = margin_test(a, b, margin=3.0)
    assert clustered.upper - clustered.lower > 1.5 * (independent.upper - independent.lower)
    iid_variance = float(np.var(b - a, ddof=1)) / len(a)
    assert clustered.design_effect == pytest.approx(_statsmodels(b - a, clusters)["se"] ** 2 / iid_variance, abs=1e-9)
    assert 2.5 < clustered.design_effect < 3 * 30 / 29 + 1e-9  # near the cluster size (x G/(G-1)): items move together
    assert clustered.mde > independent.mde
    assert independent.clusters == 0 and math.isnan(independent.design_effect)


def test_clustered_0_1_scores_use_the_cluster_robust_interval_not_tangos():
    rng = np.random.default_rng(3)
    clusters = np.repeat(np.arange(40), 3)
    broken = np.repeat(rng.random(40) < 0.15, 3)  # a whole document breaks or not
    a = np.ones(120)
    b = np.where(broken, 0.0, 1.0)
    clustered = margin_test(a, b, margin=0.05, clusters=clusters)
    want = _statsmodels(b - a, clusters)
    assert clustered.lower == pytest.approx(want["lower"], abs=1e-9)
    assert clustered.upper == pytest.approx(want["upper"], abs=1e-9)
    tango = margin_test(a, b, margin=0.05)
    assert tango.method.startswith("Tango") and not clustered.method.startswith("Tango")
    assert clustered.upper - clustered.lower > tango.upper - tango.lower
    assert clustered.design_effect > 2


def test_unchanged_0_1_scores_in_clusters_keep_tangos_real_bound():
    a = b = np.ones(60)
    test = margin_test(a, b, margin=0.05, clusters=np.repeat(np.arange(20), 3))
    assert test.lower < 0 and test.identical and test.clusters == 20
    assert test.lower == margin_test(a, b, margin=0.05).lower


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50, allow_nan=False), st.integers(0, 6)), min_size=4, max_size=40))
def test_cluster_robust_se_matches_statsmodels_on_any_data(rows):
    d = np.asarray([r[0] for r in rows])
    clusters = np.asarray([r[1] for r in rows])
    clustered, _, g = cluster_variance(d, clusters)
    if g < 2:
        assert math.isnan(clustered)
        return
    assert math.sqrt(clustered) == pytest.approx(_statsmodels(d, clusters)["se"], rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=40))
def test_one_item_per_cluster_is_the_paired_t_interval(values):
    d = np.asarray(values)
    a = np.zeros_like(d) + 0.5
    clustered = margin_test(a, a + d, margin=1.0, clusters=np.arange(len(d)))
    independent = margin_test(a, a + d, margin=1.0)
    if np.std(d) == 0:
        return
    assert clustered.lower == pytest.approx(independent.lower, abs=1e-9)
    assert clustered.upper == pytest.approx(independent.upper, abs=1e-9)


# -- the gate ---------------------------------------------------------------------------------------
ROUGE_GATE = GateConfig.from_mapping({"alpha": 0.05, "metrics": {"rougeL": {"tolerance": 3, "relative": False}}})


def _clustered_results(n_clusters):
    a, b, clusters = correlated_fixture(n_clusters=n_clusters)
    base, current = make_result(rouge=a), make_result(rouge=b)
    labels = dict(zip(current.example_ids, clusters.tolist(), strict=True))
    current.clusters = labels
    return base, current, labels


def test_the_gate_reads_the_cluster_robust_interval_and_states_clusters_and_design_effect():
    base, current, labels = _clustered_results(30)
    record = check(current, baseline_of(base), ROUGE_GATE)[0]
    ids = current.example_ids
    differences = np.subtract(current.per_example["rougeL"], base.per_example["rougeL"])
    want = _statsmodels(differences, [labels[i] for i in ids])
    assert record.details["ci"] == pytest.approx([want["lower"], want["upper"]], abs=1e-9)
    assert record.details["n_clusters"] == 30 and record.details["design_effect"] > 2.5
    assert "30 clusters, design effect" in record.message and "⚠" not in record.message
    iid = margin_test(np.zeros_like(differences), differences, margin=record.details["allowed_drop"])
    assert iid.method.startswith("paired t")  # the same data as independent pairs: the narrower t interval
    assert iid.upper - iid.lower < record.details["ci"][1] - record.details["ci"][0]
    current.clusters = {}
    unclustered = check(current, baseline_of(base), ROUGE_GATE)[0]  # unclustered ROUGE: the betting bound
    assert "clusters" not in unclustered.message and "betting" in unclustered.message


def test_fewer_than_20_clusters_warn_on_the_verdict():
    base, current, _ = _clustered_results(FEW_CLUSTERS - 1)
    record = check(current, baseline_of(base), ROUGE_GATE)[0]
    assert f"⚠ only {FEW_CLUSTERS - 1} clusters" in record.message
    assert record.details["cluster_warning"].startswith(f"only {FEW_CLUSTERS - 1} clusters")


def test_slice_gates_use_the_cluster_robust_interval():
    from harness.gate.slices import slice_verdicts

    base, current, labels = _clustered_results(30)
    half = current.example_ids[:45]
    current.slices = base.slices = {"part": {"first": half, "rest": current.example_ids[45:]}}
    entry = baseline_of(base).entries[(base.suite, base.candidate)]
    records = check(current, baseline_of(base), ROUGE_GATE)
    rows = {row.slice: row for row in slice_verdicts(current, entry, ROUGE_GATE, records)}
    differences = np.subtract(current.per_example["rougeL"][:45], base.per_example["rougeL"][:45])
    want = _statsmodels(differences, [labels[i] for i in half])
    assert list(rows["first"].ci) == pytest.approx([want["lower"], want["upper"]], abs=1e-9)


# -- the spec ---------------------------------------------------------------------------------------
def _project(tmp_path, rows, cluster='"document"'):
    lines = [json.dumps({"messages": [{"role": "user", "content": f"q {i}"}, {"role": "assistant", "content": "a"}],
                         **({"metadata": meta} if meta is not None else {})}) for i, meta in enumerate(rows)]
    (tmp_path / "eval.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[suites.qa]\ntask = "generation"\neval = "eval.jsonl"\ncluster = {cluster}\n'
                    '[suites.qa.candidates.base]\nkind = "base"\n', encoding="utf-8")
    return spec, _load


def _load(spec):
    session = EvalSession(SessionOptions(spec_path=spec, root_dir=spec.parent, cache_dir=spec.parent / "cache"))
    session.spec  # noqa: B018 - loading the spec runs the checks
    return session


def test_a_row_without_the_cluster_field_is_refused_naming_file_and_line(tmp_path):
    rows = [{"document": f"d{i // 3}"} for i in range(5)] + [{"other": 1}] + [{"document": "d9"}]
    spec, load = _project(tmp_path, rows)
    with pytest.raises(SpecError) as info:
        load(spec)
    message = str(info.value)
    assert f"{spec}: suites.qa.cluster" in message
    assert "eval.jsonl:6: cluster = 'document' reads metadata.document" in message
    assert "1 of 7 rows lack it" in message


def test_a_cluster_field_on_every_row_loads(tmp_path):
    spec, load = _project(tmp_path, [{"document": f"d{i // 3}"} for i in range(6)])
    assert load(spec).spec.suite("qa").cluster == "document"


def test_an_empty_cluster_name_is_refused(tmp_path):
    spec, load = _project(tmp_path, [{"document": "d"}] * 3, cluster='""')
    with pytest.raises(SpecError, match=r"suites\.qa\.cluster"):
        load(spec)


def test_the_gate_table_of_the_report_states_clusters_design_effect_and_the_warning():
    from harness.report.sections import gate_section

    base, current, _ = _clustered_results(FEW_CLUSTERS - 1)
    record = check(current, baseline_of(base), ROUGE_GATE)[0]
    row = next(line for line in gate_section([record]).splitlines() if line.startswith("| lora"))
    effect = record.details["design_effect"]
    assert f"{FEW_CLUSTERS - 1} clusters, design effect {effect:.3g} ⚠ only {FEW_CLUSTERS - 1} clusters" in row
