"""Candidate tables of the spec, checked when the spec loads: the kind, the keys each kind takes,
the types of their values, and the trainer's parameter names (and values) for trained kinds.

The trainers own their parameters (their defaults tables and checks live beside them in
``harness.backends``); they are read here through ``"module:attribute"`` names, imported only
when a spec names such a kind, so a typo in ``params`` fails at load, not after another
candidate has trained for minutes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import SpecError
from harness.protocol import MAX_COUNT, MAX_TRIALS
from harness.spec.model import CandidateSpec
from harness.spec.table import Table, show, unknown_key


@dataclass(frozen=True)
class KindFacts:
    """What one candidate kind is built by and which keys its table takes."""

    builder: str                             # "module:function" that builds it
    options: tuple[str, ...] = ()            # keys besides ``kind`` and ``params``
    params: str | None = None                # "module:NAME" of the trainer's defaults; None: no params
    values: tuple[str, ...] = ()             # "module:attr.path" value checks (the first found runs)
    summary: str = ""
    required: tuple[str, ...] = ()           # options the kind cannot do without
    schedule: bool = False                   # also check the evaluation / checkpoint schedule
    wraps: tuple[str, ...] = ()              # kinds ``base_kind`` may name; their options are taken too
    suite_check: str | None = None           # "module:function(suite, spec, where)" run once the suite is read


_OPENAI_CLIENT = ("model", "base_url", "api_key_env", "timeout_s", "concurrency", "max_attempts",
                  "max_tokens_field", "request_options")
_HF = "harness.backends.hf"
_SCORED = ("scoring",)  # kinds that score labels by log-likelihood take a per-candidate scoring
_ENGINE = ("engine", "vllm")  # local causal LMs: evaluated by transformers (default) or through vLLM
_VLLM = "harness.backends.vllm.settings"
_ENC = "harness.backends.encoder"

#: Every candidate kind. ``harness.kinds`` builds them; the spec checks their tables.
KINDS: dict[str, KindFacts] = {
    "base": KindFacts(f"{_HF}.candidates:build_base", (*_SCORED, *_ENGINE), summary="the untouched base model"),
    "lora": KindFacts(f"{_HF}.candidates:build_lora", ("seed", *_ENGINE), f"{_HF}.lora:LORA_DEFAULTS",
                      (f"{_HF}.lora:LORA.params", f"{_HF}.lora:lora_params"), "a LoRA adapter trained here",
                      schedule=True),
    "full": KindFacts(f"{_HF}.candidates:build_full", ("seed", *_ENGINE), f"{_HF}.full:FULL_DEFAULTS",
                      (f"{_HF}.full:FULL.params", f"{_HF}.full:full_params"), "a full fine-tune trained here",
                      schedule=True),
    "search": KindFacts("harness.tuning.search:build_search",
                        ("base_kind", "grid", "random", "trials", "seed", "select", "mode", "training_seed"),
                        summary="a hyperparameter search over lora / full trials", required=("base_kind",)),
    "adapter": KindFacts(f"{_HF}.loaded:build_adapter",
                         ("path", "base", "load_in_8bit", "load_in_4bit", "seed", *_SCORED, *_ENGINE),
                         summary="an existing PEFT adapter", required=("path",)),
    "model": KindFacts(f"{_HF}.loaded:build_model", ("path", "seed", *_SCORED, *_ENGINE),
                       summary="an existing model directory", required=("path",)),
    "openai": KindFacts("harness.backends.openai.candidates:build_openai",
                        (*_OPENAI_CLIENT, "suffix", "max_cost", "poll_interval_s", "job_timeout_s", "seed"),
                        "harness.backends.openai.candidates:PARAMS", ("harness.spec.candidates:openai_params",),
                        summary="an OpenAI fine-tuning job", required=("model",)),
    "endpoint": KindFacts("harness.backends.openai.endpoint:build", (*_OPENAI_CLIENT, "verify"),
                          summary="an OpenAI-compatible endpoint", required=("model",)),
    "prompted": KindFacts("harness.backends.prompted:build_prompted",
                          ("base_kind", "instruction", "shots", "stratify", "seed", *_SCORED),
                          summary="a base, adapter, model or endpoint prompted with an instruction and k "
                                  "in-context examples from the train split",
                          required=("base_kind",), wraps=("base", "adapter", "model", "endpoint"),
                          suite_check="harness.spec.candidates:check_prompted"),
    "recorded": KindFacts("harness.backends.recorded:build_recorded", ("path",),
                          summary="outputs recorded elsewhere (JSONL of example id → output)", required=("path",)),
    "encoder-base": KindFacts(f"{_ENC}.candidates:build_encoder_base", ("base_model", "seed", "max_length"),
                              summary="an encoder with a seeded, untrained head"),
    "encoder-lora": KindFacts(f"{_ENC}.candidates:build_encoder_lora", ("base_model", "seed"),
                              f"{_ENC}.train:ENCODER_LORA_DEFAULTS", (f"{_ENC}.train:ENCODER_LORA.params",),
                              "an encoder LoRA adapter trained here"),
    "encoder-full": KindFacts(f"{_ENC}.candidates:build_encoder_full", ("base_model", "seed"),
                              f"{_ENC}.train:ENCODER_FULL_DEFAULTS", (f"{_ENC}.train:ENCODER_FULL.params",),
                              "an encoder fine-tuned here"),
    "encoder-zeroshot": KindFacts(f"{_ENC}.candidates:build_encoder_zeroshot",
                                  ("base_model", "max_length", "label_descriptions"),
                                  summary="nearest label description by sentence embedding"),
}

_SCHEDULE = ("harness.training.arguments:schedule_arguments", "harness.training.lifecycle:schedule_arguments")

# The type of every option value, checked at load (the builders check what depends on files).
_STR, _INT, _POS, _NUM, _BOOL, _TABLE = "str", "int", "pos", "num", "bool", "table"
_OPTION_TYPES = {
    "seed": _INT, "training_seed": _INT, "trials": _POS, "concurrency": _POS, "max_attempts": _POS,
    "max_length": _POS, "timeout_s": _NUM, "poll_interval_s": _NUM, "job_timeout_s": _NUM, "max_cost": _NUM,
    "load_in_8bit": _BOOL, "load_in_4bit": _BOOL, "verify": _BOOL,
    "label_descriptions": _TABLE, "request_options": _TABLE, "grid": _TABLE, "random": _TABLE,
    "shots": "count", "stratify": _BOOL, "scoring": "scoring", "engine": "engine", "vllm": "vllm",
}
SCORING_METHODS = ("generate", "likelihood")


def resolve(target: str) -> Any:
    """The object a ``"module:attr.path"`` name points to (AttributeError / ImportError if none)."""
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _first(targets: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Any] | None:
    for target in targets:
        try:
            return resolve(target)
        except (AttributeError, ImportError):
            continue
    return None


class _ParamProblem(SpecError):
    """A parameter value refused by a check defined here; ``located`` names its key path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"parameter {key!r}: {problem}")
        self.key, self.problem = key, problem

    def located(self, where: str) -> SpecError:
        return SpecError(f"{where}.params.{self.key}: {self.problem}")


def openai_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's fine-tuning hyperparameters: each ``"auto"`` or a positive number (whole for
    ``n_epochs`` and ``batch_size``)."""
    for key, value in params.items():
        whole = key != "learning_rate_multiplier"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value == "auto" or (number and value > 0 and (not whole or float(value).is_integer())):
            continue
        raise _ParamProblem(key, f"expected \"auto\" or a positive {'integer' if whole else 'number'}, got {value!r}")
    return dict(params)


def param_names(kind: str) -> frozenset[str]:
    """The parameter names a trained ``kind`` accepts (its trainer's defaults)."""
    facts = KINDS[kind]
    return frozenset(resolve(facts.params)) if facts.params else frozenset()


def _check_option(t: Table, key: str) -> None:
    expected = _OPTION_TYPES.get(key, _STR)
    if expected == _STR:
        t.string(key)
    elif expected == _INT:
        t.seed(key)
    elif expected == "count":
        t.integer(key, 0, minimum=0)
    elif expected == "scoring":
        t.string(key, choices=SCORING_METHODS)
    elif expected == "engine":
        resolve(f"{_VLLM}:check_engine")(t.get(key), t.at(key))
    elif expected == "vllm":
        resolve(f"{_VLLM}:check_vllm_table")(t.get(key), t.at(key))
    elif expected == _POS:
        t.integer(key, 1, minimum=1, maximum=MAX_TRIALS if key == "trials" else MAX_COUNT)
    elif expected == _NUM:
        t.number(key, 0.0, minimum=0.0)
    elif expected == _BOOL:
        t.boolean(key, False)
    else:
        t.table(key)


def _check_params(kind: str, params: Table, options: Mapping[str, Any], has_validation: bool) -> None:
    facts = KINDS[kind]
    if kind == "search":
        base_kind = options.get("base_kind")
        if base_kind in ("lora", "full"):
            known = param_names(base_kind)
            for key in params:
                if key not in known:
                    raise unknown_key(params.where, key, known)
        if not has_validation:
            raise SpecError(f"{params.where.removesuffix('.params')}: a search selects on the validation split; "
                            "the suite has none (add `validation = ...`)")
        search = resolve("harness.tuning.search:parse_search")
        search(dict(params.data), dict(options), params.where.removesuffix(".params"))
        return
    if facts.params is None:
        if params.data:
            raise SpecError(f"{params.where}: kind {kind!r} ({facts.summary}) trains nothing and takes no params")
        return
    known = param_names(kind)
    for key in params:
        if key not in known:
            raise unknown_key(params.where, key, known)
    check = _first(facts.values)
    if check is None:
        return
    schedule = _first(_SCHEDULE) if facts.schedule else None
    try:
        merged = check(dict(params.data))
        if schedule is not None and isinstance(merged, Mapping):
            schedule(merged, has_eval=has_validation, checkpointing=True)
    except SpecError as exc:
        located = getattr(exc, "located", None)
        if callable(located):
            raise located(params.where.removesuffix(".params")) from None
        raise SpecError(f"{params.where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{params.where}: {exc}") from None


def check_candidate(name: str, value: Any, where: str, *, has_validation: bool = False) -> CandidateSpec:
    """A checked candidate table: known kind, known keys of the right types, known parameters."""
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table with at least `kind = \"...\"`, got {show(value)}")
    t = Table(value, where)
    kind = t.string("kind", required=True)
    if kind not in KINDS:
        raise SpecError(f"{t.at('kind')}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    facts = KINDS[kind]
    own = facts.options
    if facts.wraps:
        base_kind = t.string("base_kind", required=True, choices=facts.wraps)
        inner = KINDS[base_kind]
        own = (*own, *(k for k in inner.options if k not in own))
        for key in inner.required:
            if key not in t:
                raise SpecError(f"{t.at(key)}: missing key {key!r} (base_kind {base_kind!r}: {inner.summary})")
    allowed = ("kind", "params", *own)
    for key in t:
        if key not in allowed:
            raise unknown_key(where, key, allowed)
    for key in own:
        if key in t:
            _check_option(t, key)
        elif key in facts.required:
            raise SpecError(f"{t.at(key)}: missing key {key!r} (kind {kind!r}: {facts.summary})")
    if "vllm" in t and t.get("engine") != "vllm":  # accepted and ignored is refused
        raise SpecError(f"{t.at('vllm')}: a vllm table is used only with engine = \"vllm\" (set it on this "
                        "candidate or its suite, or remove the table)")
    params = t.table("params") or Table({}, t.at("params"))
    options = {k: v for k, v in value.items() if k not in ("kind", "params")}
    _check_params(kind, params, options, has_validation)
    return CandidateSpec(name=name, kind=kind, params=dict(params.data), options=options)


def check_suite_candidates(suite: Any, where: str) -> None:
    """Checks that need the whole suite (its task, labels, splits): per-candidate ``scoring`` and each
    kind's ``suite_check``; ``where`` is the key path of the suite's candidates table."""
    for name, spec in suite.candidates.items():
        at = f"{where}.{name}"
        scoring = spec.options.get("scoring")
        if scoring == "likelihood" and suite.task != "classification":
            raise SpecError(f"{at}.scoring: 'likelihood' scoring needs a classification suite (task is {suite.task!r})")
        check = KINDS[spec.kind].suite_check
        if check:
            resolve(check)(suite, spec, at)


def check_prompted(suite: Any, spec: CandidateSpec, where: str) -> None:
    """A prompted candidate's shots can be drawn: the suite has a train split with enough examples
    (and, stratified, every label among them). The context window is checked when it is built."""
    from harness.errors import HarnessError

    shots = int(spec.options.get("shots", 0))
    if not shots:
        return
    if suite.train is None:
        raise SpecError(f"{where}.shots: shots are drawn from the train split; suite {suite.name!r} has none "
                        "(add `train = ...` or set shots = 0)")
    plan = resolve("harness.backends.prompted:prompt_plan")
    problem = resolve("harness.backends.prompting:ShotError")
    try:
        plan(suite, dict(spec.options), seed=int(spec.options.get("seed", 0)))
    except problem as exc:
        raise SpecError(f"{where}.{exc.key}: {exc.problem}") from None
    except HarnessError as exc:
        raise SpecError(f"{where}.shots: cannot read the train or eval split to draw shots: {exc}") from None
