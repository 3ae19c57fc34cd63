"""The candidate spec: one TOML file declares the suites, their data and their candidates.

Example (``fixtures/candidates.toml``)::

    [harness]
    base_model = "embedded"        # or a local directory or a hub id (--ft-base-model overrides)
    corpus = "corpus.txt"          # text the embedded base's tokenizer and warm-up use
    seed = 0

    [suites.sentiment]
    task = "classification"        # or "generation"
    labels = ["positive", "negative"]
    system = "Answer with one word."   # optional: system prompt of every train and eval prompt
    train = "sentiment/train.jsonl"
    validation = "sentiment/validation.jsonl"
    eval = "sentiment/eval.jsonl"

    [suites.sentiment.candidates.lora]
    kind = "lora"
    params = { n_epochs = 4, r = 8, alpha = 16 }

Paths are relative to the spec file. The whole file is checked when it loads, before anything
trains: unknown keys at every level, values of the wrong type, unknown kinds and metric names,
the gate tables (parsed into :class:`~harness.gate.config.GateConfig`) and the trainers'
parameter names are refused with the file and the key path, e.g.
``candidates.toml: suites.sentiment.candidates.lora.params.r: expected a positive integer``.

``model`` holds the parsed data, ``table`` the typed TOML reader, ``candidates`` the kinds and
their keys, ``loading`` the checks of the harness and suite tables.
"""

from harness.spec.candidates import check_candidate
from harness.spec.loading import METRIC_OPTIONS, SCORING, TASKS, load_spec, parse_spec
from harness.spec.model import CandidateSpec, HarnessSpec, SuiteSpec
from harness.spec.registry import KINDS, KindFacts, param_names

__all__ = [
    "KINDS",
    "METRIC_OPTIONS",
    "SCORING",
    "TASKS",
    "CandidateSpec",
    "HarnessSpec",
    "KindFacts",
    "SuiteSpec",
    "check_candidate",
    "load_spec",
    "param_names",
    "parse_spec",
]
