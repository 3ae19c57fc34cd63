"""Loading the spec: the whole file is checked before anything trains (see :mod:`harness.spec`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from harness.cost import PricingTable
from harness.errors import SpecError
from harness.gate.config import GateConfig
from harness.metrics.registry import METRICS, OPTIONS, default_metrics, metrics_for, options_for
from harness.protocol import MAX_COUNT, MAX_NEW_TOKENS, MAX_REPEAT, MAX_THREADS, DecodeParams
from harness.spec.candidates import check_candidate, check_suite_candidates
from harness.spec.collateral import check_collateral
from harness.spec.judges import check_human, check_judges
from harness.spec.model import HarnessSpec, SuiteSpec
from harness.spec.registry import KINDS, OPTION_CHECKS, SECTION_CHECKS, discover_entry_points
from harness.spec.scorers import check_scorers
from harness.spec.slices import check_slices
from harness.spec.table import Table, show
from harness.text import file_stem, invisible_characters

TASKS = ("classification", "generation")
SCORING = ("generate", "likelihood")
_TOP_KEYS = ("harness", "suites")
_HARNESS_KEYS = ("base_model", "corpus", "seed", "batch_size", "tiny", "pricing", "torch_threads",
                 "build_processes", "expected_monthly_requests", "compute_price_per_hour")
#: ``build_processes``: 1 (the session builds every candidate) or 2 (a helper process trains ahead)
MAX_BUILD_PROCESSES = 2
_SUITE_KEYS = ("task", "labels", "label_aliases", "system", "train", "validation", "eval", "decode",
               "scoring", "metrics", "metric_options", "gate", "candidates", "slices", "engine", "vllm",
               "max_dropped_fraction", "max_truncated_fraction", "likelihood_normalize", "scorers", "judges",
               "allow_train_eval_overlap", "collateral", "human", "cluster", "repeats")
#: ``likelihood_normalize``: label log-likelihoods as they are, per character (lm-evaluation-harness's
#: ``acc_norm``) or per UTF-8 byte (``acc_bytes``)
LIKELIHOOD_NORMALIZE = ("none", "chars", "bytes")
#: suite keys that limit training-data loss, each a fraction of the train rows in [0, 1]
DATA_LOSS_LIMITS = ("max_dropped_fraction", "max_truncated_fraction")
_DECODE_KEYS = ("max_new_tokens", "temperature", "top_p", "seed", "stop")
#: ``metric_options`` keys and the values each accepts (from the metric registry).
METRIC_OPTIONS = {name: option.choices for name, option in OPTIONS.items()}
_PRICE_FIELDS = ("input_per_1m", "output_per_1m", "training_per_1m", "fine_tuned_input_per_1m",
                 "fine_tuned_output_per_1m")


def _path(base: Path, t: Table, key: str, *, required: bool = False) -> Path | None:
    value = t.string(key, required=required)
    return (base / value).resolve() if value is not None else None


def _decode(t: Table | None) -> DecodeParams:
    if t is None:
        return DecodeParams()
    top_p = t.number("top_p", 1.0)
    if not 0 < top_p <= 1:
        raise SpecError(f"{t.at('top_p')}: expected a number in (0, 1], got {show(top_p)}")
    return DecodeParams(max_new_tokens=t.integer("max_new_tokens", 16, minimum=1, maximum=MAX_NEW_TOKENS),
                        temperature=t.number("temperature", 0.0, minimum=0.0),
                        top_p=top_p, seed=t.seed("seed"),
                        stop=t.strings("stop"))


def _labels(t: Table, task: str) -> tuple[str, ...]:
    labels = t.strings("labels")
    if task != "classification":
        if "labels" in t:
            raise SpecError(f"{t.at('labels')}: only a classification suite takes labels (task is {task!r})")
        return ()
    if len(labels) < 2:
        raise SpecError(f"{t.at('labels')}: a classification suite needs at least two labels, got {list(labels)}")
    seen: dict[str, str] = {}
    for label in labels:
        if label != label.strip():
            raise SpecError(f"{t.at('labels')}: label {label!r} starts or ends with whitespace; a reply is "
                            "compared with the label as written, so write it without the padding")
        if hidden := invisible_characters(label):
            raise SpecError(f"{t.at('labels')}: label {label!r} holds invisible character(s) "
                            f"{', '.join(hidden)}; it would look like another label but never match one")
        folded = label.strip().casefold()
        if folded in seen:
            same = "twice" if seen[folded] == label else f"as {seen[folded]!r} and {label!r} (labels match case-insensitively)"
            raise SpecError(f"{t.at('labels')}: duplicate label, {label!r} is listed {same}")
        seen[folded] = label
    return labels


def _aliases(t: Table, labels: tuple[str, ...]) -> dict[str, str]:
    table = t.table("label_aliases")
    if table is None:
        return {}
    if not labels:
        raise SpecError(f"{t.at('label_aliases')}: only a classification suite takes label aliases")
    aliases = {}
    for spelling in table:
        label = table.string(spelling, required=True)
        if label not in labels:
            raise SpecError(f"{table.at(spelling)}: {label!r} is not one of the labels ({', '.join(labels)})")
        aliases[spelling] = label
    return aliases


def _metrics(t: Table, task: str) -> tuple[str, ...]:
    names = t.strings("metrics")
    reportable = metrics_for(task)
    for i, name in enumerate(names):
        where = f"{t.at('metrics')}[{i}]"
        if name not in METRICS:
            raise SpecError(f"{where}: unknown metric {name!r} (a {task} suite reports: {', '.join(reportable)})")
        if name not in reportable:
            raise SpecError(f"{where}: {name!r} is a {METRICS[name].task} metric; a {task} suite reports: "
                            f"{', '.join(reportable)}")
        if name in names[:i]:
            raise SpecError(f"{where}: {name!r} is listed twice")
    if "metrics" in t and not names:
        raise SpecError(f"{t.at('metrics')}: the list is empty (leave it out for the defaults: "
                        f"{', '.join(default_metrics(task))})")
    return names


def _metric_options(t: Table, reported: tuple[str, ...]) -> dict[str, Any]:
    table = t.table("metric_options", known=tuple(OPTIONS))
    if table is None:
        return {}
    readers = options_for(reported)
    for key, value in table.items():
        choices = OPTIONS[key].choices
        if not choices:  # free text (a model reference)
            if not isinstance(value, str) or not value.strip():
                raise SpecError(f"{table.at(key)}: expected a non-empty string, got {value!r}")
        elif value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise SpecError(f"{table.at(key)}: {value!r} is not one of {', '.join(repr(c) for c in choices)}")
        if key not in readers:
            raise SpecError(f"{table.at(key)}: no metric of this suite reads it (metrics: {', '.join(reported)}; "
                            f"options they read: {', '.join(readers) or 'none'})")
    return dict(table.items())


def _fraction(t: Table, key: str) -> float | None:
    if key not in t:
        return None
    value = t.number(key, 0.0)
    if not 0.0 <= value <= 1.0:
        raise SpecError(f"{t.at(key)}: expected a fraction of the train rows in [0, 1], got {value:g}")
    return float(value)


def _gate(t: Table, reported: tuple[str, ...]) -> GateConfig:
    where = t.at("gate")
    config = GateConfig.from_mapping(t.get("gate"), where=where)
    for name in config.metrics or ():
        if name not in reported:
            raise SpecError(f"{where}.metrics.{name}: the suite does not report {name!r} "
                            f"(it reports: {', '.join(reported)})")
    return config


def _registered(key: str, t: Table) -> Any:
    """The check a family registered for option ``key`` (a clear error when none is installed)."""
    check = OPTION_CHECKS.get(key)
    if check is None:
        raise SpecError(f"{t.at(key)}: no installed family checks {key!r} (is its backend importable?)")
    return check


def _with_engine(t: Table, candidate: Any) -> Any:
    """A candidate table with the suite's ``engine`` / ``vllm`` settings as defaults (local kinds only)."""
    if not isinstance(candidate, dict) or ("engine" not in t and "vllm" not in t):
        return candidate
    facts = KINDS.get(str(candidate.get("kind")))
    if facts is None or "engine" not in facts.options:
        return candidate
    merged = dict(candidate)
    if "engine" in t:
        merged.setdefault("engine", _registered("engine", t)(t.get("engine"), t.at("engine")))
    if "vllm" in t and merged.get("engine") == "vllm":  # the suite's table serves its vLLM candidates
        own = candidate["vllm"] if isinstance(candidate.get("vllm"), dict) else {}
        merged["vllm"] = {**_registered("vllm", t)(t.get("vllm"), t.at("vllm")), **own}
    return merged


def _suite(name: str, value: Any, base: Path, where: str) -> SuiteSpec:
    t = Table(value, where, _SUITE_KEYS)
    task = t.string("task", required=True, choices=TASKS)
    labels = _labels(t, task)
    scoring = t.string("scoring", "generate", choices=SCORING)
    if scoring != "generate" and task != "classification":
        raise SpecError(f"{t.at('scoring')}: {scoring!r} scoring needs a classification suite (task is {task!r})")
    normalize = t.string("likelihood_normalize", "none", choices=LIKELIHOOD_NORMALIZE)
    if normalize != "none" and task != "classification":
        raise SpecError(f"{t.at('likelihood_normalize')}: label likelihoods are normalised only in a "
                        f"classification suite (task is {task!r})")
    metrics = _metrics(t, task)
    scorers = check_scorers(t.table("scorers"), base)
    candidates = t.table("candidates")
    judges = check_judges(t.table("judges"), tuple(candidates or ()))
    human = check_human(t.table("human", known=("labels", "against")), base, tuple(candidates or ()))
    reported = ((metrics or default_metrics(task)) + tuple(s.metric for s in scorers) + tuple(j.metric for j in judges)
                + ((human.metric,) if human is not None else ()))
    cluster = t.string("cluster")
    if cluster is not None and (not cluster.strip() or cluster != cluster.strip()):
        raise SpecError(f"{t.at('cluster')}: name a metadata field of the eval rows (e.g. cluster = \"document\"), "
                        f"got {cluster!r}")
    system = t.string("system")
    if system is not None and not system.strip():
        raise SpecError(f"{t.at('system')}: the system prompt is empty (leave the key out for none)")
    suite = SuiteSpec(
        name=name, task=task,
        train=_path(base, t, "train"), validation=_path(base, t, "validation"),
        eval=_path(base, t, "eval", required=True),  # type: ignore[arg-type]
        labels=labels, label_aliases=_aliases(t, labels),
        decode=_decode(t.table("decode", known=_DECODE_KEYS)),
        scoring=scoring, gate=_gate(t, reported), metrics=metrics,
        metric_options=_metric_options(t, reported),
        scorers=scorers,
        judges=judges,
        human=human,
        candidates=({} if candidates is None else
                    {cname: check_candidate(cname, _with_engine(t, candidates.get(cname)), candidates.at(cname),
                                            has_validation="validation" in t) for cname in candidates}),
        system=system, cluster=cluster, repeats=t.integer("repeats", 1, minimum=1, maximum=MAX_REPEAT),
        slices=check_slices(t.table("slices"), task=task),
        **{key: _fraction(t, key) for key in DATA_LOSS_LIMITS},
        likelihood_normalize=normalize,
        allow_train_eval_overlap=t.integer("allow_train_eval_overlap", 0, minimum=0),
        collateral=check_collateral(t.table("collateral"), base, task=task, candidates=candidates.data if candidates else {},
                                    judges=judges),
    )
    if candidates is not None:
        _check_names(list(suite.candidates), candidates.where, "candidate", "reports/outputs/<suite>/<name>.jsonl")
        check_suite_candidates(suite, candidates.where)
    if "vllm" in t and not any(c.options.get("engine") == "vllm" for c in suite.candidates.values()):
        raise SpecError(f"{t.at('vllm')}: no candidate of this suite uses engine = \"vllm\", so the table would "
                        "be ignored (set engine = \"vllm\" on the suite or a candidate, or remove it)")
    return suite


def _check_names(names: list[str], where: str, what: str, written: str) -> None:
    """Names are non-empty, unpadded, and no two share the file name they are written under."""
    stems: dict[str, str] = {}
    for name in names:
        if not name.strip() or name != name.strip() or invisible_characters(name):
            raise SpecError(f"{where}.{name!r}: a {what} name must be non-empty text without leading or "
                            "trailing whitespace or invisible characters")
        stem = file_stem(name)
        if not stem:
            raise SpecError(f"{where}.{name!r}: a {what} name needs at least one letter, digit, '.', '_' "
                            f"or '-' (it names its files: {written})")
        if stem in stems:
            raise SpecError(f"{where}: {what}s {stems[stem]!r} and {name!r} would write the same files "
                            f"({written} with name {stem!r}); rename one")
        stems[stem] = name


def check_tiny(t: Table) -> dict[str, Any]:
    """``[harness.tiny]``: sizes of the embedded base, checked by the family that builds it."""
    check = SECTION_CHECKS.get("tiny")
    if check is None:
        raise SpecError(f"{t.where}: no installed family builds the embedded base")
    return check(t)


def check_pricing(t: Table) -> dict[str, Any]:
    """``[harness.pricing]``: ``as_of`` and ``models = { id = { input_per_1m = ... } }`` (or models directly)."""

    if "as_of" in t:
        t.string("as_of")
    models = (t.table("models") if "models" in t else None) or Table({k: v for k, v in t.items() if k != "as_of"},
                                                                     t.where)
    for model in models:
        entry = models.table(model, known=_PRICE_FIELDS)
        for key in entry or ():
            entry.number(key, 0.0, minimum=0.0)  # type: ignore[union-attr]
    try:
        PricingTable().with_overrides(models.data, as_of=t.get("as_of"))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{t.where}: {exc}") from None
    return dict(t.data)


def parse_spec(raw: Any, path: Path) -> HarnessSpec:
    """Check a parsed TOML document completely and build the spec; errors name file and key."""
    discover_entry_points()  # families installed as packages (the built-ins: harness.kinds)
    path = Path(path)
    top = Table(raw, f"{path}:", _TOP_KEYS, top=True)
    base = path.parent.resolve()
    h = top.table("harness", known=_HARNESS_KEYS) or Table({}, f"{path}: harness", ())
    suites = top.table("suites")
    tiny = h.table("tiny")
    pricing = h.table("pricing")
    threads = h.get("torch_threads")
    return HarnessSpec(
        path=path,
        base_model=h.string("base_model", "embedded", nonempty=True),
        corpus=_path(base, h, "corpus"),
        seed=h.seed("seed"),
        batch_size=h.integer("batch_size", 32, minimum=1, maximum=MAX_COUNT),
        torch_threads=None if threads is None else h.integer("torch_threads", 0, minimum=1, maximum=MAX_THREADS),
        build_processes=h.integer("build_processes", 1, minimum=1, maximum=MAX_BUILD_PROCESSES),
        tiny=check_tiny(tiny) if tiny is not None else {},
        pricing=check_pricing(pricing) if pricing is not None else {},
        expected_monthly_requests=(h.integer("expected_monthly_requests", 0, minimum=1)
                                   if "expected_monthly_requests" in h else None),
        compute_price_per_hour=(h.number("compute_price_per_hour", 0.0, minimum=0.0)
                                if "compute_price_per_hour" in h else None),
        suites=_suites(suites, base),
    )


def _suites(suites: Table | None, base: Path) -> dict[str, SuiteSpec]:
    if suites is None:
        return {}
    _check_names(list(suites), suites.where, "suite", "reports/<name>.md")
    return {name: _suite(name, suites.get(name), base, suites.at(name)) for name in suites}


def load_spec(path: Path | str) -> HarnessSpec:
    """Parse and check the spec file; every error names the file and the offending key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        if text.startswith("\ufeff"):
            raise SpecError(f"{path}: starts with a UTF-8 byte-order mark (BOM), which TOML does not allow; "
                            "save the file as UTF-8 without BOM")
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise SpecError(f"{path}: candidate spec not found (pass --spec to an ft-harness command, or --ft-spec / ft_spec in pytest.ini to pytest)") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a candidate spec file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    return parse_spec(raw, path)
