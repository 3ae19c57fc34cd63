"""The candidate spec parser: valid files load, every mistake names file and key."""

import json
from pathlib import Path

import pytest

from harness import kinds
from harness.errors import SpecError
from harness.spec import load_spec

KIND_NAMES = tuple(kinds.KINDS)

GOOD = """
[harness]
corpus = "corpus.txt"
[suites.s]
task = "classification"
labels = ["a", "b"]
train = "train.jsonl"
eval = "eval.jsonl"
decode = { max_new_tokens = 3 }
[suites.s.candidates.lora]
kind = "lora"
params = { r = 4 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_and_resolves_paths(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    suite = spec.suite("s")
    assert suite.labels == ("a", "b")
    assert suite.train == (tmp_path / "train.jsonl").resolve()
    assert suite.decode.max_new_tokens == 3
    assert suite.candidate("lora").params == {"r": 4}
    assert spec.corpus == (tmp_path / "corpus.txt").resolve()


def test_committed_spec_loads(repo_root):
    spec = load_spec(repo_root / "fixtures" / "candidates.toml")
    assert {"sentiment", "product_descriptions"} <= set(spec.suites)
    for suite in spec.suites.values():
        assert suite.eval.exists(), suite.eval


@pytest.mark.parametrize(("mutation", "expected"), [
    (('task = "classification"', 'task = "ranking"'), "suites.s.task"),
    (('labels = ["a", "b"]', 'labels = ["a"]'), "suites.s.labels"),
    (('kind = "lora"', 'kin = "lora"'), "missing key 'kind'"),
    (('decode = { max_new_tokens = 3 }', 'decode = { max_tokens = 3 }'), "suites.s.decode.max_tokens: unknown key"),
    (('eval = "eval.jsonl"', 'eval = 3'), "suites.s.eval"),
    (('[suites.s]', '[suites.s]\nbogus = 1'), "suites.s.bogus: unknown key"),
])
def test_errors_name_file_and_key(tmp_path, mutation, expected):
    old, new = mutation
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_not_toml_and_missing(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[suites\n"))
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_unknown_suite_and_candidate(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    with pytest.raises(SpecError, match="no suite 'x'"):
        spec.suite("x")
    with pytest.raises(SpecError, match=r"no candidate 'full'.*declared: lora"):
        spec.suite("s").candidate("full")


# -- the whole file is checked when it loads ------------------------------------------------------

FULL = """
[harness]
corpus = "corpus.txt"
seed = 0
batch_size = 8
[suites.s]
task = "classification"
labels = ["a", "b"]
label_aliases = { alpha = "a" }
train = "train.jsonl"
validation = "validation.jsonl"
eval = "eval.jsonl"
decode = { max_new_tokens = 3 }
[suites.s.gate]
alpha = 0.05
metrics = { accuracy = { tolerance = 0.03 } }
[suites.s.candidates.lora]
kind = "lora"
params = { r = 4 }
[suites.g]
task = "generation"
train = "train.jsonl"
eval = "eval.jsonl"
metrics = ["bleu", "rougeL"]
metric_options = { rouge_tokenizer = "unicode" }
gate = { metrics = { rougeL = { tolerance = 3.0 } } }
[suites.g.candidates.base]
kind = "base"
"""


def spec_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_the_full_example_loads(tmp_path):
    spec = load_spec(write(tmp_path, FULL))
    assert spec.batch_size == 8
    s, g = spec.suite("s"), spec.suite("g")
    assert s.label_aliases == {"alpha": "a"}
    assert s.gate.alpha == 0.05 and s.gate.metrics == ("accuracy",)
    assert s.gate.checks[0].tolerance == 0.03
    assert s.reported_metrics == ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro")
    assert g.metrics == ("bleu", "rougeL") and g.metric_options == {"rouge_tokenizer": "unicode"}
    assert g.system is None


@pytest.mark.parametrize(("old", "new", "key", "says"), [
    # [harness] values of the wrong type or out of range
    ("batch_size = 8", 'batch_size = "abc"', "harness.batch_size", "expected an integer, got a string 'abc'"),
    ("batch_size = 8", "batch_size = 0", "harness.batch_size", "expected an integer >= 1, got 0"),
    ("batch_size = 8", "batch_size = -3", "harness.batch_size", "expected an integer >= 1, got -3"),
    ("batch_size = 8", "batch_size = 8.5", "harness.batch_size", "expected an integer"),
    ("seed = 0", 'seed = "x"', "harness.seed", "expected an integer, got a string 'x'"),
    ("seed = 0", "seed = true", "harness.seed", "expected an integer, got a boolean True"),
    ('corpus = "corpus.txt"', "corpus = 3", "harness.corpus", "expected a string"),
    ("seed = 0", "seed = 0\nbase_modle = 'x'", "harness.base_modle", "unknown key (did you mean 'base_model'?"),
    ("seed = 0", "seed = 0\ntorch_threads = 0", "harness.torch_threads", "expected an integer >= 1"),
    ("seed = 0", "seed = 0\ntiny = { hidden = 8 }", "harness.tiny.hidden", "unknown key"),
    ("seed = 0", "seed = 0\ntiny = { hidden_size = \"big\" }", "harness.tiny.hidden_size", "expected an integer"),
    ("seed = 0", "seed = 0\ntiny = { seed = 3 }", "harness.tiny.seed", "takes harness.seed"),
    ("seed = 0", "seed = 0\npricing = { models = { m = { input_per_1m = \"1\" } } }",
     "harness.pricing.models.m.input_per_1m", "expected a finite number"),
    # suite values
    ('label_aliases = { alpha = "a" }', 'label_aliases = "x"', "suites.s.label_aliases",
     "expected a table, got a string 'x'"),
    ('label_aliases = { alpha = "a" }', 'label_aliases = { alpha = "c" }', "suites.s.label_aliases.alpha",
     "'c' is not one of the labels (a, b)"),
    ('labels = ["a", "b"]', 'labels = ["a", "b", "a"]', "suites.s.labels", "duplicate label, 'a' is listed twice"),
    ('labels = ["a", "b"]', 'labels = ["a", "b", "A"]', "suites.s.labels", "as 'a' and 'A'"),
    ('labels = ["a", "b"]', 'labels = "a"', "suites.s.labels", "expected a list of strings"),
    ('labels = ["a", "b"]', 'labels = ["a", 2]', "suites.s.labels[1]", "expected a non-empty string"),
    ("decode = { max_new_tokens = 3 }", "decode = { max_new_tokens = -5 }", "suites.s.decode.max_new_tokens",
     "expected an integer >= 1, got -5"),
    ("decode = { max_new_tokens = 3 }", 'decode = { max_new_tokens = "4" }', "suites.s.decode.max_new_tokens",
     "expected an integer"),
    ("decode = { max_new_tokens = 3 }", "decode = { temperature = -1 }", "suites.s.decode.temperature", ">= 0"),
    ("decode = { max_new_tokens = 3 }", "decode = { top_p = 0 }", "suites.s.decode.top_p", "(0, 1]"),
    ("decode = { max_new_tokens = 3 }", 'decode = { stop = "\\n" }', "suites.s.decode.stop", "expected a list"),
    ('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nsystem = ""\ndecode', "suites.s.system", "empty"),
    ('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nsystem = 3\ndecode', "suites.s.system",
     "expected a string"),
    ('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nscoring = "likelyhood"\ndecode', "suites.s.scoring",
     "'likelyhood' is not one of generate, likelihood"),
    ('task = "generation"', 'task = "generation"\nscoring = "likelihood"', "suites.g.scoring",
     "needs a classification suite"),
    ('task = "generation"', 'task = "generation"\nlabels = ["x", "y"]', "suites.g.labels",
     "only a classification suite takes labels"),
    # metric names and options, from the metric registry
    ('metrics = ["bleu", "rougeL"]', 'metrics = "bleu"', "suites.g.metrics", "expected a list of strings"),
    ('metrics = ["bleu", "rougeL"]', 'metrics = ["blue", "rougeL"]', "suites.g.metrics[0]",
     "unknown metric 'blue' (a generation suite reports: exact_match, bleu, "),
    ('metrics = ["bleu", "rougeL"]', 'metrics = ["bleu", "accuracy"]', "suites.g.metrics[1]",
     "'accuracy' is a classification metric"),
    ('metrics = ["bleu", "rougeL"]', 'metrics = ["bleu", "bleu"]', "suites.g.metrics[1]", "listed twice"),
    ('metrics = ["bleu", "rougeL"]', "metrics = []", "suites.g.metrics", "the list is empty"),
    ('metric_options = { rouge_tokenizer = "unicode" }', 'metric_options = { rouge_tokeniser = "unicode" }',
     "suites.g.metric_options.rouge_tokeniser", "did you mean 'rouge_tokenizer'?"),
    ('metrics = ["bleu", "rougeL"]\nmetric_options = { rouge_tokenizer = "unicode" }',
     'metrics = ["rougeL"]\nmetric_options = { bleu_tokenize = "intl" }',
     "suites.g.metric_options.bleu_tokenize", "no metric of this suite reads it (metrics: rougeL"),
    ('metric_options = { rouge_tokenizer = "unicode" }', 'metric_options = { rouge_stemmer = 1 }',
     "suites.g.metric_options.rouge_stemmer", "1 is not one of True, False"),
    # gate tables, parsed when the spec loads
    ("alpha = 0.05", "alpha = 7", "suites.s.gate.alpha", "expected a number between 0 and 1, got 7"),
    ("alpha = 0.05", "alpha = 0", "suites.s.gate.alpha", "between 0 and 1"),
    ("alpha = 0.05", "alpha = 1.0", "suites.s.gate.alpha", "between 0 and 1"),
    ("alpha = 0.05", "alpha = true", "suites.s.gate.alpha", "between 0 and 1"),
    ("alpha = 0.05", "alhpa = 0.05", "suites.s.gate.alhpa", "unknown key"),
    ("alpha = 0.05", 'alpha = 0.05\ntolerance = "-2%"', "suites.s.gate.tolerance", "must be a finite number >= 0"),
    ("tolerance = 0.03", "tolerance = -0.03", "suites.s.gate.metrics.accuracy.tolerance", ">= 0"),
    ("tolerance = 0.03", "tolerence = 0.03", "suites.s.gate.metrics.accuracy.tolerence", "unknown key"),
    ("accuracy = { tolerance = 0.03 }", "acuracy = { tolerance = 0.03 }", "suites.s.gate.metrics.acuracy",
     "unknown metric 'acuracy'"),
    ("accuracy = { tolerance = 0.03 }", "f1_macro = { tolerance = 0.03 }", "suites.s.gate.metrics.f1_macro",
     "cannot be gated"),
    ("rougeL = { tolerance = 3.0 }", "accuracy = { tolerance = 3.0 }", "suites.g.gate.metrics.accuracy",
     "the suite does not report 'accuracy'"),
    ("rougeL = { tolerance = 3.0 }", "rouge1 = { tolerance = 3.0 }", "suites.g.gate.metrics.rouge1",
     "the suite does not report 'rouge1' (it reports: bleu, rougeL)"),
    # candidate tables: kind, keys, parameter names
    ('kind = "lora"', 'kind = "lora"\nparmas = { r = 4 }', "suites.s.candidates.lora.parmas",
     "unknown key (did you mean 'params'? known: engine, kind, params, seed, vllm)"),
    ('kind = "lora"', 'kind = "lorra"', "suites.s.candidates.lora.kind", "unknown kind 'lorra' (known: base, lora"),
    ('kind = "lora"', "kind = 3", "suites.s.candidates.lora.kind", "expected a string"),
    ("params = { r = 4 }", "params = { rank = 4 }", "suites.s.candidates.lora.params.rank", "unknown key"),
    ("params = { r = 4 }", 'params = "r=4"', "suites.s.candidates.lora.params", "expected a table"),
    ('kind = "lora"', 'kind = "lora"\nseed = "1"', "suites.s.candidates.lora.seed", "expected an integer"),
    ('kind = "base"', 'kind = "base"\nparams = { r = 4 }', "suites.g.candidates.base.params",
     "trains nothing and takes no params"),
    ('kind = "base"', 'kind = "base"\nseed = 1', "suites.g.candidates.base.seed", "unknown key"),
    ('kind = "base"', 'kind = "endpoint"', "suites.g.candidates.base.model", "missing key 'model'"),
    ('kind = "base"', 'kind = "endpoint"\nmodel = "m"\nconcurrency = 0', "suites.g.candidates.base.concurrency",
     ">= 1"),
    ('kind = "base"', 'kind = "adapter"\npath = "a"\nload_in_4bit = "yes"',
     "suites.g.candidates.base.load_in_4bit", "expected true or false"),
    ('kind = "base"', 'kind = "openai"\nmodel = "m"\nparams = { n_epoch = 1 }',
     "suites.g.candidates.base.params.n_epoch", "did you mean 'n_epochs'?"),
    ('kind = "base"', 'kind = "openai"\nmodel = "m"\nparams = { n_epochs = true }',
     "suites.g.candidates.base.params.n_epochs", "expected \"auto\" or a positive integer, got True"),
    ('kind = "base"', 'kind = "openai"\nmodel = "m"\nparams = { n_epochs = "3" }',
     "suites.g.candidates.base.params.n_epochs", "got '3'"),
    ("[suites.s]", "[suite.s]\ntask = 1\n[suites.s]", "suite", "unknown top-level key (known: harness, suites)"),
])
def test_every_bad_value_names_file_and_key_path(tmp_path, old, new, key, says):
    assert old in FULL
    message = spec_error(tmp_path, FULL.replace(old, new, 1))
    assert f": {key}: " in message or f": {key} " in message, message
    assert says in message, message


@pytest.mark.parametrize(("params", "key", "says"), [
    ("r = 0", "r", "expected a positive integer, got 0"),
    ("n_epochs = true", "n_epochs", "expected a positive number, got True"),
    ('n_epochs = "3"', "n_epochs", "expected a positive number, got '3'"),
    ("dropout = 1.5", "dropout", "[0, 1)"),
    ("eval_steps = 4, save_steps = 6, load_best_model_at_end = true", "save_steps", "multiple of 'eval_steps'"),
])
def test_trainer_parameter_values_are_checked_at_load(tmp_path, params, key, says):
    message = spec_error(tmp_path, FULL.replace("params = { r = 4 }", f"params = {{ {params} }}"))
    assert f"suites.s.candidates.lora.params.{key}: " in message and says in message, message


def test_a_bad_candidate_late_in_the_file_fails_at_load_before_anything_trains(tmp_path, monkeypatch):
    """Loading is pure: no trainer is built, nothing is imported from torch, and the last
    candidate's typo is reported although good trained candidates come before it."""
    import sys

    text = FULL + '[suites.g.candidates.zz_full]\nkind = "full"\nparams = { n_epochs = 2, lerning_rate = 1e-3 }\n'
    before = {name for name in sys.modules if name.split(".")[0] in ("torch", "transformers", "peft", "trl")}
    message = spec_error(tmp_path, text)
    after = {name for name in sys.modules if name.split(".")[0] in ("torch", "transformers", "peft", "trl")}
    assert "suites.g.candidates.zz_full.params.lerning_rate: unknown key (did you mean 'learning_rate'?" in message
    assert after == before  # nothing heavy was imported to find it


def test_bad_encoder_and_search_candidates_fail_at_load(tmp_path):
    enc = FULL + '[suites.s.candidates.zs]\nkind = "encoder-zeroshot"\nparams = { n_epochs = 1 }\n'
    assert "suites.s.candidates.zs.params: kind 'encoder-zeroshot'" in spec_error(tmp_path, enc)
    enc = FULL + '[suites.s.candidates.el]\nkind = "encoder-lora"\nbase_modle = "minilm"\n'
    assert "suites.s.candidates.el.base_modle: unknown key (did you mean 'base_model'?" in spec_error(tmp_path, enc)
    search = FULL + ('[suites.s.candidates.sr]\nkind = "search"\nbase_kind = "lora"\n'
                     'params = { n_epochs = 1 }\ngrid = { rr = [4, 8] }\n')
    assert "suites.s.candidates.sr.grid.rr: not a lora parameter" in spec_error(tmp_path, search)
    search = search.replace("rr = [4, 8]", "r = [4, 8]").replace("n_epochs = 1", "n_epoch = 1")
    assert "suites.s.candidates.sr.params.n_epoch: unknown key" in spec_error(tmp_path, search)
    no_validation = search.replace("n_epoch = 1", "n_epochs = 1").replace(
        'validation = "validation.jsonl"\n', "")
    assert "selects on the validation split" in spec_error(tmp_path, no_validation)


def test_gate_config_is_parsed_once_and_passed_through(tmp_path):
    from harness.gate import GateConfig

    gate = load_spec(write(tmp_path, FULL)).suite("s").gate
    assert isinstance(gate, GateConfig)
    assert GateConfig.from_mapping(gate, where="ignored") is gate
    assert load_spec(write(tmp_path, GOOD)).suite("s").gate == GateConfig()


def test_every_kind_is_registered_by_its_family_with_a_callable_builder():
    """The registry is filled by the families through the one discovery point."""
    from harness import kinds
    from harness.spec import KINDS, param_names

    families = {facts.name: family for family in kinds.BUILTIN_FAMILIES for facts in getattr(family, "KINDS", ())}
    assert set(families) == set(KINDS)
    for name, facts in KINDS.items():
        assert callable(facts.builder), name
        assert facts.builder.__module__.startswith(families[name].__name__.rsplit(".", 1)[0]), name
        assert set(facts.required) <= set(facts.options), name
    assert "learning_rate" in param_names("lora") and "r" in param_names("lora")
    assert "r" not in param_names("full") and "learning_rate" in param_names("encoder-full")


_WRONG_TYPE = {"str": 7, "int": "x", "pos": 0, "num": "x", "bool": "yes", "table": 3, "count": -1,
               "scoring": "guess", "registered": 12}


@pytest.mark.parametrize("kind", sorted(KIND_NAMES))
def test_every_declared_option_is_checked_at_load(tmp_path, kind):
    """The option schema each family declares is the one the spec checks: every option of every kind,
    given a value of the wrong type, is refused at load naming that key."""
    from harness.spec import KINDS
    from harness.spec.candidates import OPTION_TYPES

    facts = KINDS[kind]
    base = {"kind": kind, **{key: "x" for key in facts.required}}
    if facts.wraps:
        base["base_kind"] = facts.wraps[0]
    for key in facts.options:
        if key in facts.required or key == "base_kind":
            continue
        expected = OPTION_TYPES.get(key, "str")
        table = ", ".join(f"{k} = {json.dumps(v)}" for k, v in {**base, key: _WRONG_TYPE[expected]}.items())
        path = tmp_path / f"{kind}-{key}.toml"
        path.write_text(f'[suites.s]\ntask = "classification"\nlabels = ["a", "b"]\neval = "e.jsonl"\n'
                        f"validation = \"v.jsonl\"\n[suites.s.candidates.c]\n{table.replace(', ', chr(10))}\n",
                        encoding="utf-8")
        with pytest.raises(SpecError, match=rf"candidates\.c\.{key}"):
            load_spec(path)


# -- the suite's system prompt --------------------------------------------------------------------

def _chat_rows(path: Path, n: int = 4, system: str | None = None) -> None:
    import json

    rows = []
    for i in range(n):
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": f"review {i}"}, {"role": "assistant", "content": "ab"[i % 2]}]
        rows.append({"id": f"e{i}", "messages": messages})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_system_prompt_reaches_every_train_and_eval_prompt(tmp_path):
    from harness.data import load_split
    from harness.runner.evaluate import prompt_key

    for name in ("train", "validation", "eval"):
        _chat_rows(tmp_path / f"{name}.jsonl")
    text = FULL.replace('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nsystem = "Answer a or b."\ndecode')
    suite = load_spec(write(tmp_path, text)).suite("s")
    assert suite.system == "Answer a or b."
    for which in ("train", "validation", "eval"):
        split = suite.load_split(which)
        assert all(ex.prompt[0] == {"role": "system", "content": "Answer a or b."} for ex in split.examples)
        plain = load_split(tmp_path / f"{which}.jsonl", name=which)
        assert split.fingerprint != plain.fingerprint  # cache keys and the baseline see the prompt
        assert {prompt_key(ex.prompt) for ex in split.examples}.isdisjoint(
            prompt_key(ex.prompt) for ex in plain.examples)


def test_no_system_prompt_changes_nothing(tmp_path):
    from harness.data import load_split

    _chat_rows(tmp_path / "eval.jsonl", system="Own prompt.")
    suite = load_spec(write(tmp_path, FULL)).suite("s")
    split, plain = suite.load_split("eval"), load_split(tmp_path / "eval.jsonl", name="eval")
    assert split.fingerprint == plain.fingerprint
    assert [ex.messages for ex in split.examples] == [ex.messages for ex in plain.examples]


def test_system_prompt_conflicting_with_the_data_is_refused(tmp_path):
    _chat_rows(tmp_path / "eval.jsonl", system="Own prompt.")
    text = FULL.replace('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nsystem = "Other."\ndecode')
    suite = load_spec(write(tmp_path, text)).suite("s")
    with pytest.raises(SpecError, match=r"eval\.jsonl:1: suite 's' sets `system = \.\.\.` but 4 of 4 eval"):
        suite.load_split("eval")
    same = FULL.replace('eval = "eval.jsonl"\ndecode', 'eval = "eval.jsonl"\nsystem = "Own prompt."\ndecode')
    assert len(load_spec(write(tmp_path, same)).suite("s").load_split("eval")) == 4


# -- any TOML document: a spec or a SpecError, never another exception ----------------------------

_KEYS = ["harness", "suites", "s", "task", "labels", "label_aliases", "system", "train", "validation", "eval",
         "decode", "scoring", "metrics", "metric_options", "gate", "candidates", "kind", "params", "alpha",
         "tolerance", "relative", "inconclusive", "resamples", "max_new_tokens", "top_p", "stop", "seed",
         "batch_size", "tiny", "pricing", "models", "base_kind", "grid", "random", "trials", "path", "model",
         "accuracy", "bleu", "rougeL", "r", "n_epochs", "corpus", "torch_threads", "x"]


def _toml_values():
    from hypothesis import strategies as st

    scalars = (st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=True, allow_infinity=True)
               | st.booleans() | st.text(max_size=8)
               | st.sampled_from(["classification", "generation", "lora", "full", "base", "search", "a", "b",
                                  "2%", "eval.jsonl", "encoder-lora", "endpoint", "pass"]))
    keys = st.sampled_from(_KEYS) | st.text(min_size=1, max_size=5)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=25)


def _mutations():
    from hypothesis import strategies as st

    return st.lists(st.tuples(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=4), _toml_values()),
                    min_size=1, max_size=3)


def _set(doc: dict, keys: list[str], value) -> None:
    for key in keys[:-1]:
        child = doc.get(key)
        if not isinstance(child, dict):
            child = doc[key] = {}
        doc = child
    doc[keys[-1]] = value


def test_arbitrary_documents_give_a_spec_or_a_spec_error(tmp_path):
    import copy

    import tomllib
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from harness.spec import parse_spec

    good = tomllib.loads(FULL)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(st.sampled_from(_KEYS), _toml_values(), max_size=4) | _mutations())
    def check(document):
        if isinstance(document, list):  # a mutation of the good spec
            edited = copy.deepcopy(good)
            for keys, value in document:
                _set(edited, ["suites", *keys] if keys[0] not in ("harness", "suites") else keys, value)
            document = edited
        try:
            parse_spec(document, tmp_path / "spec.toml")
        except SpecError as exc:
            assert str(exc).startswith(f"{tmp_path / 'spec.toml'}:"), str(exc)

    check()


def test_a_split_file_is_read_once_per_run_while_it_is_unchanged(tmp_path, monkeypatch):
    """The spec's checks, a prompted candidate's shots and the evaluation share one read of each file."""
    import os

    from harness.spec import model

    _chat_rows(tmp_path / "eval.jsonl")
    _chat_rows(tmp_path / "train.jsonl")
    train = (tmp_path / "train.jsonl").read_text(encoding="utf-8").replace("review", "train review")
    (tmp_path / "train.jsonl").write_text(train, encoding="utf-8")  # shots must differ from eval examples
    reads: list[str] = []
    real = model.load_split
    monkeypatch.setattr(model, "load_split", lambda path, **kw: reads.append(str(path)) or real(path, **kw))
    text = GOOD.replace('kind = "lora"\nparams = { r = 4 }', 'kind = "prompted"\nbase_kind = "base"\nshots = 2')
    suite = load_spec(write(tmp_path, text)).suite("s")  # the spec check draws the shots: reads train and eval
    first = suite.load_split("train")
    first.examples.clear()  # a caller's copy: the next caller still sees every example
    assert len(suite.load_split("train")) == 4 and len(suite.load_split("eval")) == 4
    assert sorted(reads) == sorted({str(tmp_path / "train.jsonl"), str(tmp_path / "eval.jsonl")})
    _chat_rows(tmp_path / "eval.jsonl", n=6)
    os.utime(tmp_path / "eval.jsonl", ns=(1, 1))
    assert len(suite.load_split("eval")) == 6  # an edited file is read again
