"""End to end through pytest itself: a mini project trained, scored, gated and reported."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from miniproject import make_project, read_results

pytestmark = pytest.mark.slow


@pytest.fixture
def shared_cache(session_cache) -> Path:
    return session_cache


def run_pytest(project: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", str(project / "test_mini.py"), "-p", "no:cacheprovider",
               "--rootdir", str(project), "--ft-spec", str(project / "candidates.toml"),
               "--ft-cache-dir", str(cache), "--ft-reports-dir", str(project / "reports"), *args]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=600)


def test_baseline_round_trip_and_regression(tmp_path, shared_cache):
    project = tmp_path / "p"
    make_project(project)
    first = run_pytest(project, shared_cache)
    assert first.returncode == 0, first.stdout + first.stderr
    report = (project / "reports" / "mini.md").read_text(encoding="utf-8")
    assert "no baseline" in report
    assert "Traceback" not in first.stdout

    update = run_pytest(project, shared_cache, "--ft-update-baseline")
    assert update.returncode == 0, update.stdout + update.stderr
    baseline_path = project / "reports" / "baseline.json"
    baseline = json.loads(baseline_path.read_text(encoding="utf-8"))
    assert baseline["suites"]["mini"]["lora"]["metrics"]["accuracy"]["n"] == 40

    again = run_pytest(project, shared_cache)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"\b\d+ passed\b", again.stdout) and " failed" not in again.stdout, again.stdout
    rerun = read_results(project / "reports")
    gates = {(g["suite"], g["candidate"], g["metric"]): g for g in rerun["gates"]}
    stored = baseline["suites"]["mini"]["lora"]["metrics"]["accuracy"]["value"]
    lora_gate = gates[("mini", "lora", "accuracy")]
    # the same model against its own baseline: no example changed, yet 40 unchanged examples
    # cannot rule out a 2-point drop (Tango's bound), so the gate says inconclusive, which this
    # suite's gate (inconclusive = "pass") lets through
    assert lora_gate["verdict"] == "inconclusive", lora_gate
    assert lora_gate["baseline"] == stored == lora_gate["current"]
    assert rerun["problems"] == []

    # demand more than the model reaches: every baseline example of lora was right
    current = read_results(project / "reports")
    lora_value = next(r["metrics"]["accuracy"] for r in current["results"] if r["candidate"] == "lora")
    entry = baseline["suites"]["mini"]["lora"]["metrics"]["accuracy"]
    entry["scores"] = {k: 1.0 for k in entry["scores"]}
    entry["value"] = 1.0
    baseline_path.write_text(json.dumps(baseline, indent=2), encoding="utf-8")
    failed = run_pytest(project, shared_cache)
    assert failed.returncode == 1, failed.stdout
    assert "accuracy" in failed.stdout
    assert "1.000" in failed.stdout and f"{lora_value:.3f}" in failed.stdout
    assert "regression" in failed.stdout  # classified in the terminal summary
    results = read_results(project / "reports")
    assert any(p["category"] == "regression" for p in results["problems"])


def test_invalid_training_data_is_a_harness_error(tmp_path, shared_cache):
    project = tmp_path / "bad"
    make_project(project, train_text='{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    result = run_pytest(project, shared_cache)
    assert result.returncode == 1
    assert "harness error" in result.stdout
    assert "train.jsonl:2" in result.stdout
    results = read_results(project / "reports")
    categories = {p["nodeid"].split("::")[-1]: p["category"] for p in results["problems"]}
    assert categories and all(c == "harness error" for n, c in categories.items() if "base" not in n)
    assert not any(c == "regression" for c in categories.values())


def test_strict_fails_a_metric_without_baseline(tmp_path, shared_cache):
    project = tmp_path / "strict"
    make_project(project)
    relaxed = run_pytest(project, shared_cache)
    assert relaxed.returncode == 0
    strict = run_pytest(project, shared_cache, "--ft-strict")
    assert strict.returncode == 1
    assert "no baseline" in strict.stdout


def test_rescore_reproduces_the_run(tmp_path, shared_cache):
    project = tmp_path / "rescore"
    make_project(project)
    assert run_pytest(project, shared_cache).returncode == 0
    reports = project / "reports"
    out = tmp_path / "rescored"
    done = subprocess.run([sys.executable, "-m", "harness", "rescore", str(reports), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    original = {(r["suite"], r["candidate"]): r for r in read_results(reports)["results"]}
    rescored = {(r["suite"], r["candidate"]): r for r in read_results(out)["results"]}
    assert original.keys() == rescored.keys()
    for key, result in original.items():
        assert rescored[key]["metrics"] == result["metrics"]
        assert rescored[key]["per_example"] == result["per_example"]
    assert [c["result"]["p_value"] for c in read_results(out)["comparisons"]] == \
           [c["result"]["p_value"] for c in read_results(reports)["comparisons"]]


def test_warm_run_trains_and_generates_nothing(tmp_path, shared_cache):
    project = tmp_path / "warm"
    make_project(project)
    assert run_pytest(project, shared_cache).returncode == 0
    assert run_pytest(project, shared_cache).returncode == 0
    info = read_results(project / "reports")["run_info"]
    assert info["events"].get("trained", 0) == 0
    assert info["events"].get("generated", 0) == 0
    assert info["cache"]["outputs"]["hits"] == 2


def test_corrupt_cached_adapter_is_reported_and_rebuilt(tmp_path):
    project = tmp_path / "corrupt"
    make_project(project)
    cache = tmp_path / "cache"
    assert run_pytest(project, cache).returncode == 0
    adapters = sorted(cache.glob("artifacts/adapter-*/adapter_model.safetensors"))
    assert len(adapters) == 1
    data = bytearray(adapters[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content
    adapters[0].write_bytes(bytes(data))

    rerun = run_pytest(project, cache, "-W", "always")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "corrupt" in (rerun.stdout + rerun.stderr).lower()
    info = read_results(project / "reports")["run_info"]
    assert info["events"]["trained"] == 1
    assert info["cache"]["adapter"]["rebuilt_corrupt"] == 1


def test_two_xdist_workers_train_each_candidate_once(tmp_path):
    project = tmp_path / "xdist"
    make_project(project)
    cache = tmp_path / "cache"
    result = run_pytest(project, cache, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    info = read_results(project / "reports")["run_info"]
    assert info["events"]["trained"] == 1          # lora, built by one worker, a cache hit for the other
    assert info["events"]["base_built"] == 1
    results = read_results(project / "reports")["results"]
    assert sorted(r["candidate"] for r in results) == ["base", "lora"]


def test_junit_xml_carries_the_verdicts(tmp_path, shared_cache):
    import xml.etree.ElementTree as ET

    project = tmp_path / "junit"
    make_project(project)
    xml_path = tmp_path / "junit.xml"
    done = run_pytest(project, shared_cache, f"--junitxml={xml_path}")
    assert done.returncode == 0, done.stdout + done.stderr
    names = {p.get("name"): p.get("value") for p in ET.parse(xml_path).getroot().iter("property")}
    assert any("lora" in name and "accuracy" in name for name in names), names


def test_repeat_reports_spread_and_determinism(tmp_path, shared_cache):
    project = tmp_path / "repeat"
    make_project(project)
    done = run_pytest(project, shared_cache, "--ft-repeat", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["candidate"]: r for r in read_results(project / "reports")["results"]}
    repeats = results["lora"]["details"]["repeats"]
    assert repeats["n"] == 3 and repeats["deterministic"] is True  # greedy decoding repeats exactly
    assert repeats["metrics"]["accuracy"]["std"] == 0.0
    assert repeats["metrics"]["accuracy"]["mean"] == results["lora"]["metrics"]["accuracy"]
    assert "## Stability" in (project / "reports" / "mini.md").read_text(encoding="utf-8")


def test_sampled_repeats_set_in_the_spec_feed_the_gate_with_per_item_means(tmp_path, shared_cache):
    project = tmp_path / "sampled"
    spec = make_project(project)
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("decode = { max_new_tokens = 3 }",
                                 "decode = { max_new_tokens = 3, temperature = 2.0, seed = 0 }\nrepeats = 3"),
                    encoding="utf-8")
    done = run_pytest(project, shared_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["candidate"]: r for r in read_results(project / "reports")["results"]}
    lora = results["lora"]
    repeats = lora["details"]["repeats"]
    assert repeats["n"] == 3 and repeats["sampled"] is True and repeats["averaged"] == ["accuracy"]
    scores = lora["per_example"]["correct"]
    assert {round(3 * s) / 3 for s in scores} == set(scores) and set(scores) <= {0.0, 1 / 3, 2 / 3, 1.0}
    assert lora["metrics"]["accuracy"] == pytest.approx(sum(scores) / len(scores), abs=1e-12)
    assert repeats["n_differing"] >= 1 and repeats["within_item_variance"]["accuracy"] >= 0
    page = (project / "reports" / "mini.md").read_text(encoding="utf-8")
    assert "within-item variance" in page and "each item's mean over 3 sampled runs for accuracy" in page
