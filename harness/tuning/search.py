"""Hyperparameter search as a candidate: grid or random trials of a ``lora`` / ``full`` candidate.

Each trial is an ordinary cached candidate (same cache key as a declared candidate with those
parameters, so a trial equal to one is a hit and a second run trains nothing). The best trial
is chosen by validation loss or by a named metric on the validation split, never on the eval
split. The search candidate *is* the best trial's model; its training summary carries the
trials table under ``search``::

    [suites.sentiment.candidates.lora_search]
    kind = "search"
    base_kind = "lora"
    params = { n_epochs = 2 }                        # fixed for every trial
    grid = { learning_rate = [1e-3, 3e-3], r = [4, 8] }
    # or: random = { learning_rate = { log_uniform = [1e-4, 1e-2] }, r = [4, 8, 16] }
    #     trials = 6, seed = 0
    select = "eval_loss"                             # or a metric, e.g. "accuracy"
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.backends.hf.candidates import (
    LocalCausalLM,
    candidate_where,
    inference_settings,
    trained_candidate,
)
from harness.backends.hf.full import FULL_DEFAULTS
from harness.backends.hf.lora import LORA_DEFAULTS
from harness.errors import SpecError
from harness.protocol import MAX_SEED, MAX_TRIALS
from harness.runner.evaluate import evaluate_candidate
from harness.spec import CandidateSpec
from harness.spec.registry import KindFacts, param_names, register_kind
from harness.spec.table import unknown_key
from harness.training.lifecycle import summary_from_dict

BASE_KINDS = ("lora", "full")
STRATEGIES = ("grid", "random")
#: the keys of a search table (declared once: the kind registry and :func:`parse_search` read it)
OPTIONS = ("base_kind", "grid", "random", "trials", "seed", "select", "mode", "training_seed")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
LOSS_SELECTORS = ("eval_loss",)


@dataclass(frozen=True)
class SearchSpec:
    """A parsed search: which kind, which strategy, over which space, selected how."""

    base_kind: str
    strategy: str
    space: dict[str, Any]
    trials: int | None = None
    seed: int = 0
    select: str = "eval_loss"
    mode: str = "min"
    training_seed: int | None = None
    fixed: dict[str, Any] = field(default_factory=dict)


def _defaults_of(kind: str) -> Mapping[str, Any]:
    return LORA_DEFAULTS if kind == "lora" else FULL_DEFAULTS


def _check_distribution(name: str, value: Any, where: str) -> None:
    if isinstance(value, list):
        if not value:
            raise SpecError(f"{where}.{name}: the list of values to try is empty")
        return
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DISTRIBUTIONS:
        raise SpecError(f"{where}.{name}: expected a list of values or a table with one of "
                        f"{', '.join(DISTRIBUTIONS)}, got {value!r}")
    kind, bounds = next(iter(value.items()))
    if kind == "choice":
        _check_distribution(name, bounds, where)
        return
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
            or not bounds[0] < bounds[1]):
        raise SpecError(f"{where}.{name}.{kind}: expected [low, high] with low < high, got {bounds!r}")
    if kind == "log_uniform" and bounds[0] <= 0:
        raise SpecError(f"{where}.{name}.log_uniform: bounds must be positive, got {bounds!r}")
    if kind == "int_uniform" and not all(float(b).is_integer() for b in bounds):
        raise SpecError(f"{where}.{name}.int_uniform: bounds must be integers, got {bounds!r}")


def parse_search(params: Mapping[str, Any], options: Mapping[str, Any], where: str) -> SearchSpec:
    """Check a ``kind = "search"`` candidate's options; errors name the spec key at fault."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r} for a search (allowed: kind, params, "
                        f"{', '.join(sorted(OPTIONS))})")
    base_kind = options.get("base_kind")
    if base_kind not in BASE_KINDS:
        raise SpecError(f"{where}.base_kind: expected one of {', '.join(BASE_KINDS)}, got {base_kind!r}")
    declared = [s for s in STRATEGIES if s in options]
    if len(declared) != 1:
        raise SpecError(f"{where}: declare exactly one of `grid = {{...}}` or `random = {{...}}` "
                        f"(found {', '.join(declared) or 'neither'})")
    strategy = declared[0]
    space = options[strategy]
    if not isinstance(space, dict) or not space:
        raise SpecError(f"{where}.{strategy}: expected a non-empty table of parameter = values")
    known = _defaults_of(base_kind)
    for name, value in space.items():
        if name not in known:
            raise SpecError(f"{where}.{strategy}.{name}: not a {base_kind} parameter "
                            f"(known: {', '.join(sorted(known))})")
        if strategy == "grid":
            if not isinstance(value, list) or not value:
                raise SpecError(f"{where}.grid.{name}: expected a non-empty list of values, got {value!r}")
        else:
            _check_distribution(name, value, f"{where}.random")
    if strategy == "grid":
        combinations = math.prod(len(values) for values in space.values())
        if combinations > MAX_TRIALS:
            raise SpecError(f"{where}.grid: {combinations:,} combinations; a search runs at most {MAX_TRIALS:,} "
                            "trials (narrow the grid, or use random = {...} with trials = N)")
    trials = options.get("trials")
    if strategy == "random":
        if not isinstance(trials, int) or isinstance(trials, bool) or not 1 <= trials <= MAX_TRIALS:
            raise SpecError(f"{where}.trials: a random search needs trials = N (an integer from 1 to "
                            f"{MAX_TRIALS:,}), got {trials!r}")
    elif trials is not None:
        raise SpecError(f"{where}.trials: only a random search takes `trials`; a grid tries every combination")
    select = options.get("select", "eval_loss")
    if not isinstance(select, str) or not select:
        raise SpecError(f"{where}.select: expected a metric name such as 'eval_loss' or 'accuracy', got {select!r}")
    mode = options.get("mode", "min" if select.endswith("loss") else "max")
    if mode not in ("min", "max"):
        raise SpecError(f"{where}.mode: expected 'min' or 'max', got {mode!r}")
    for key in ("seed", "training_seed"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= MAX_SEED):
            raise SpecError(f"{where}.{key}: expected an integer from 0 to {MAX_SEED}, got {value!r}")
    return SearchSpec(base_kind=base_kind, strategy=strategy, space=dict(space),
                      trials=trials if strategy == "random" else None, seed=int(options.get("seed", 0) or 0),
                      select=select, mode=mode, training_seed=options.get("training_seed"),
                      fixed=dict(params))


def _distribution(value: Any):
    """A list of choices as is, or the scipy.stats distribution a table names."""
    if isinstance(value, list):
        return value
    from scipy import stats

    kind, bounds = next(iter(value.items()))
    if kind == "choice":
        return list(bounds)
    low, high = bounds
    if kind == "uniform":
        return stats.uniform(loc=low, scale=high - low)
    if kind == "log_uniform":
        return stats.loguniform(low, high)
    return stats.randint(int(low), int(high) + 1)


def _plain(value: Any) -> Any:
    """numpy scalars from scipy / scikit-learn as Python numbers (for keys, JSON and TOML)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value


def expand_trials(search: SearchSpec) -> list[dict[str, Any]]:
    """The searched values of each trial, in trial order, without duplicates.

    A grid is every combination (``sklearn.model_selection.ParameterGrid``); a random search
    draws ``trials`` settings with ``ParameterSampler`` seeded by ``seed`` (without replacement
    when every entry is a list, so it may give fewer).
    """
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    if search.strategy == "grid":
        drawn = list(ParameterGrid(search.space))
    else:
        space = {name: _distribution(value) for name, value in search.space.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "space smaller than n_iter": we say so in the log
            drawn = list(ParameterSampler(space, n_iter=int(search.trials or 1), random_state=search.seed))
    trials: list[dict[str, Any]] = []
    for setting in drawn:
        plain = {name: _plain(setting[name]) for name in sorted(setting)}
        if plain not in trials:
            trials.append(plain)
    return trials


def select_best(scores: Sequence[float | None], mode: str) -> int:
    """Index of the best score (lowest for ``min``, highest for ``max``); the first wins a tie."""
    candidates = [(i, s) for i, s in enumerate(scores) if s is not None and s == s]
    if not candidates:
        raise ValueError("no trial has a score to compare")
    sign = 1.0 if mode == "min" else -1.0
    return min(candidates, key=lambda item: (sign * float(item[1]), item[0]))[0]


def trials_table(rows: Sequence[Mapping[str, Any]], select: str) -> str:
    """The trials as a plain-text table for the log."""
    from tabulate import tabulate

    names = sorted({k for row in rows for k in row["params"]})
    headers = ["trial", *names, select, "train_loss", "cache", "best"]
    body = [[row["trial"], *[row["params"].get(n) for n in names], row["score"], row["train_loss"],
             row["cache"], "*" if row["best"] else ""] for row in rows]
    return tabulate(body, headers=headers, floatfmt=".4g")


def build_search(ctx, suite, spec):
    """Build the ``kind = "search"`` candidate: train (or reuse) every trial, pick the best."""
    where = candidate_where(ctx, suite, spec)
    search = parse_search(spec.params, spec.options, where)
    if suite.validation is None:
        raise SpecError(f"{where}: a search selects on the validation split; suite {suite.name!r} has none "
                        "(add `validation = ...`; the eval split is kept for the final comparison)")
    settings = expand_trials(search)
    if search.strategy == "random" and len(settings) < int(search.trials or 0):
        ctx.log(f"{suite.name}/{spec.name}: only {len(settings)} distinct settings in the random space "
                f"(asked for {search.trials})")
    validation = None
    if search.select not in LOSS_SELECTORS:
        validation = suite.load_split("validation")
    options = {"seed": search.training_seed} if search.training_seed is not None else {}
    rows: list[dict[str, Any]] = []
    built: list[Any] = []
    for i, setting in enumerate(settings):
        trial_spec = CandidateSpec(name=f"{spec.name}/trial-{i}", kind=search.base_kind,
                                   params={**search.fixed, **setting}, options=options)
        candidate, entry = trained_candidate(ctx, suite, trial_spec, search.base_kind)
        summary = candidate.training
        score = summary.eval_loss
        if validation is not None:
            score = _metric_on_validation(ctx, candidate, suite, validation, search.select, where)
            candidate.release()
        rows.append({
            "trial": i, "params": setting, "score": score, "eval_loss": summary.eval_loss,
            "train_loss": summary.train_loss, "runtime_s": summary.runtime_s,
            "cache": "hit" if entry.hit else "miss", "key": entry.key,
            "overfitting": bool(getattr(summary, "overfitting", None)),
            "early_stopped": bool(getattr(summary, "early_stopped", False)),
            "fingerprint": candidate.fingerprint, "best": False,
        })
        built.append(candidate)
    try:
        best = select_best([row["score"] for row in rows], search.mode)
    except ValueError:
        raise SpecError(f"{where}.select: no trial produced {search.select!r}") from None
    rows[best]["best"] = True
    ctx.log(f"{suite.name}/{spec.name}: {search.strategy} search, best by {search.select} ({search.mode})\n"
            + trials_table(rows, search.select))
    chosen = built[best]
    summary = summary_from_dict(chosen.training.as_dict())
    summary.search = {
        "strategy": search.strategy, "base_kind": search.base_kind, "select": search.select,
        "mode": search.mode, "selected_on": "validation", "space": search.space,
        "fixed": search.fixed, "seed": search.seed, "n_trials": len(rows), "best_trial": best,
        "best_params": dict(settings[best]), "trials": rows,
    }
    summary.notes = [*summary.notes,
                     f"search: best of {len(rows)} {search.strategy} trials by {search.select} "
                     f"({search.mode}) is trial {best}: "
                     + ", ".join(f"{k} = {v!r}" for k, v in settings[best].items())]
    return LocalCausalLM(spec.name, spec.kind, chosen.model_dir, chosen.adapter_dir, chosen.fingerprint,
                         summary, ctx.batch_size, chosen.quantization, **inference_settings(ctx, suite))


def _metric_on_validation(ctx, candidate, suite, validation, metric: str, where: str) -> float:
    result = evaluate_candidate(ctx, candidate, suite, validation)
    if metric not in result.metrics:
        raise SpecError(f"{where}.select: metric {metric!r} is not reported for suite {suite.name!r} "
                        f"(available: eval_loss, {', '.join(sorted(result.metrics))})")
    return float(result.metrics[metric])


def check_search_params(params: Mapping[str, Any], options: Mapping[str, Any], where: str,
                        has_validation: bool) -> None:
    """A search table checked at load: its base kind's parameter names, a validation split, its space."""
    base_kind = options.get("base_kind")
    if base_kind in BASE_KINDS:
        known = param_names(str(base_kind))
        for key in params:
            if key not in known:
                raise unknown_key(f"{where}.params", key, known)
    if not has_validation:
        raise SpecError(f"{where}: a search selects on the validation split; the suite has none "
                        "(add `validation = ...`)")
    parse_search(params, options, where)


KINDS = (
    KindFacts("search", build_search, OPTIONS, summary="a hyperparameter search over lora / full trials",
              required=("base_kind",), params_check=check_search_params),
)

def register() -> None:
    """Register this family's kinds (called by :mod:`harness.kinds`, the one discovery point)."""
    register_kind(*KINDS)
