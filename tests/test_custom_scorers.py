"""Custom scorers: user functions as per-example metrics (gateable, in slices, signed by their source)."""

from __future__ import annotations

import uuid

import pytest
from gradedproject import ROWS, good_outputs, poor_outputs, session, write_spec

from harness.errors import HarnessError, SpecError

SCORERS = '''
def mentions_material(example, output):
    """True when the output names the material from the input fields."""
    material = example["input"].rsplit("material: ", 1)[1]
    return material in output


def length_ratio(example, output):
    return len(output) / max(1, len(example["reference"]))


def picky(example, output):
    if example["id"] == "p-05":
        raise ValueError("cannot score this one")
    return 1.0


def wordy(example, output):
    return "many"
'''


def _project(tmp_path, scorers: str, *, source: str = SCORERS, extra: str = ""):
    module = f"user_scorers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    table = "\n".join(f'{name} = "{module}:{func}"' for name, func in scorers.items()) if isinstance(scorers, dict) \
        else scorers.replace("MODULE", module)
    return write_spec(tmp_path, f"{extra}\n[suites.s.scorers]\n{table}\n"), module


def test_a_scorer_is_a_per_example_metric_equal_to_calling_the_function(tmp_path):
    spec, _ = _project(tmp_path, {"material": "mentions_material", "ratio": "length_ratio"})
    run = session(tmp_path, spec)
    try:
        good, poor = run.evaluate("s", "good"), run.evaluate("s", "poor")
    finally:
        run.close()
    wanted = [float(fields.rsplit("material: ", 1)[1] in good_outputs()[i]) for i, fields, _ in ROWS]
    assert good.per_example["scorer:material"] == wanted
    assert poor.per_example["scorer:ratio"] == [len(poor_outputs()[i]) / len(ref) for i, _, ref in ROWS]
    assert good.metrics["scorer:material"] == sum(wanted) / len(wanted)
    assert good.signatures["scorer:material"].startswith("scorer|user_scorers_")
    assert "|source:" in good.signatures["scorer:material"]


def test_scorers_are_gated_compared_and_sliced_like_builtin_metrics(tmp_path):
    extra = ('[suites.s.gate]\nmetrics = { "scorer:material" = { tolerance = 0.05 } }\n'
             '[suites.s.slices]\ncategory = { by = "metadata", field = "category" }\n')
    spec, _ = _project(tmp_path, {"material": "mentions_material"}, extra=extra)
    run = session(tmp_path, spec, update_baseline=True)
    try:
        good, poor = run.evaluate("s", "good"), run.evaluate("s", "poor")
        result = run.compare(poor, good, "scorer:material")
        records = run.gate(good)
        run.finish(0)
    finally:
        run.close()
    assert result.mean_b == 1.0 and result.p_value < 0.01
    comparison = run.state.comparisons[0].result
    assert {row["slice"] for row in comparison["slices"]} == {"even", "odd"}
    assert [r.metric for r in records] == ["scorer:material"]
    # accepted as the baseline: the next run gates against it
    again = session(tmp_path, spec)
    try:
        verdicts = again.gate(again.evaluate("s", "good"))
    finally:
        again.close()
    assert [r.metric for r in verdicts] == ["scorer:material"]
    assert verdicts[0].verdict in ("pass", "inconclusive") and verdicts[0].baseline == verdicts[0].current


def test_editing_the_scorer_source_makes_the_baseline_not_comparable(tmp_path):
    extra = '[suites.s.gate]\nmetrics = { "scorer:material" = { tolerance = 0.05 } }\n'
    spec, module = _project(tmp_path, {"material": "mentions_material"}, extra=extra)
    run = session(tmp_path, spec, update_baseline=True)
    run.gate(run.evaluate("s", "good"))
    run.finish(0)
    first = run.state.results[0].signatures["scorer:material"]
    import importlib
    import sys

    (tmp_path / f"{module}.py").write_text(SCORERS.replace("material in output", "material.lower() in output.lower()"),
                                           encoding="utf-8")
    importlib.invalidate_caches()
    sys.modules.pop(module, None)
    again = session(tmp_path, spec, strict=True)
    try:
        result = again.evaluate("s", "good")
        assert result.signatures["scorer:material"] != first
        with pytest.raises(Exception, match="not comparable"):
            again.gate(result)
    finally:
        again.close()


def test_a_scorer_error_names_the_scorer_and_the_example(tmp_path):
    spec, module = _project(tmp_path, {"picky": "picky"})
    run = session(tmp_path, spec)
    with pytest.raises(HarnessError, match=rf"scorer 'picky' \({module}:picky\) failed on example 'p-05': "
                                           "ValueError: cannot score this one"):
        run.evaluate("s", "good")
    run.close()


def test_a_scorer_returning_text_names_the_scorer_the_value_and_the_example(tmp_path):
    spec, _ = _project(tmp_path, {"wordy": "wordy"})
    run = session(tmp_path, spec)
    with pytest.raises(HarnessError, match=r"scorer 'wordy' .*returned 'many' \(str\) for example 'p-00'"):
        run.evaluate("s", "good")
    run.close()


@pytest.mark.parametrize(("table", "message"), [
    ('x = "no_colon_here"', r"scorers\.x: expected \"package\.module:function\""),
    ('x = "surely_missing_module_q:f"', r"scorers\.x: cannot import 'surely_missing_module_q'"),
    ('x = "MODULE:absent"', r"scorers\.x: module 'user_scorers_\w+' has no 'absent'"),
])
def test_bad_scorer_references_fail_when_the_spec_loads(tmp_path, table, message):
    from harness.spec import load_spec

    spec, _ = _project(tmp_path, table)
    with pytest.raises(SpecError, match=message):
        load_spec(spec)
