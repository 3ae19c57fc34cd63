"""``[suites.<name>.collateral]``: what a fine-tune may have broken outside its task, each check
compared paired against a reference candidate (the base) with a non-inferiority tolerance.

```toml
[suites.sentiment.collateral]
reference = "base"                      # the candidate every other is compared with (default "base")
candidates = ["lora", "full"]           # default: every candidate but the reference

[suites.sentiment.collateral.forgetting]   # bits per byte of general text, paired per document
texts = "general/texts.jsonl"
tolerance = 0.05                        # the candidate may exceed the base by this many bits per byte

[suites.sentiment.collateral.agreement]    # generation: agreement with the base's greedy answers
prompts = "general/prompts.jsonl"
metric = "rougeL"                       # or "exact_match", "semscore" (embedding cosine)
tolerance = 0.5                         # allowed drop from full agreement (0-1)

[suites.sentiment.collateral.refusals]     # refusal rate on harmful requests, over-refusal on benign
harmful = "refusals/advbench.csv"       # AdvBench, HarmBench or XSTest CSV
benign = "refusals/xstest.csv"          # optional (XSTest's safe rows)
tolerance = 0.1

[suites.sentiment.collateral.calibration]  # classification: Brier (gated) and ECE of label probabilities
tolerance = 0.02
```

Every check table also takes ``candidates`` (narrowing the suite's list) and ``max_new_tokens``
where it generates. Paths are relative to the spec file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.spec.table import Table

FORGETTING, AGREEMENT, REFUSALS, CALIBRATION = "forgetting", "agreement", "refusals", "calibration"
CHECKS = (FORGETTING, AGREEMENT, REFUSALS, CALIBRATION)
AGREEMENT_METRICS = ("rougeL", "exact_match", "semscore")
#: default tolerances, on each check's own scale
DEFAULT_TOLERANCE = {FORGETTING: 0.05, AGREEMENT: 0.5, REFUSALS: 0.1, CALIBRATION: 0.02}
_COMMON = ("tolerance", "candidates")
_KEYS = {
    FORGETTING: (*_COMMON, "texts"),
    AGREEMENT: (*_COMMON, "prompts", "metric", "max_new_tokens"),
    REFUSALS: (*_COMMON, "harmful", "benign", "max_new_tokens", "strings"),
    CALIBRATION: (*_COMMON, "bins", "resamples"),
}


@dataclass(frozen=True)
class CheckSpec:
    """One collateral check: its tolerance, candidates, files and options."""

    name: str
    tolerance: float
    candidates: tuple[str, ...] | None = None  # None: the suite's collateral candidates
    files: dict[str, Path] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CollateralSpec:
    """A suite's collateral checks and the reference they are paired against."""

    reference: str = "base"
    candidates: tuple[str, ...] | None = None
    checks: dict[str, CheckSpec] = field(default_factory=dict)

    def checks_for(self, candidate: str) -> list[CheckSpec]:
        """The checks that compare ``candidate`` with the reference (none for the reference itself)."""
        if candidate == self.reference:
            return []
        chosen = []
        for check in self.checks.values():
            names = check.candidates if check.candidates is not None else self.candidates
            if names is None or candidate in names:
                chosen.append(check)
        return chosen


def _file(t: Table, key: str, base: Path, *, required: bool) -> Path | None:
    value = t.string(key, required=required)
    if value is None:
        return None
    path = (base / value).resolve()
    if not path.is_file():
        raise SpecError(f"{t.at(key)}: file not found: {path}")
    return path


def _names(t: Table, key: str, known: dict[str, Any]) -> tuple[str, ...] | None:
    if key not in t:
        return None
    names = t.strings(key)
    for name in names:
        if name not in known:
            raise SpecError(f"{t.at(key)}: no candidate {name!r} in this suite (known: {', '.join(sorted(known))})")
    return names


def _check(name: str, t: Table, base: Path, task: str, candidates: dict[str, Any]) -> CheckSpec:
    tolerance = t.number("tolerance", DEFAULT_TOLERANCE[name], minimum=0.0)
    files: dict[str, Path] = {}
    options: dict[str, Any] = {}
    if name == FORGETTING:
        files["texts"] = _file(t, "texts", base, required=True)  # type: ignore[assignment]
    elif name == AGREEMENT:
        files["prompts"] = _file(t, "prompts", base, required=True)  # type: ignore[assignment]
        options["metric"] = t.string("metric", "rougeL", choices=AGREEMENT_METRICS)
        if tolerance > 1:
            raise SpecError(f"{t.at('tolerance')}: agreement is on a 0-1 scale; expected at most 1, got {tolerance:g}")
    elif name == REFUSALS:
        files["harmful"] = _file(t, "harmful", base, required=True)  # type: ignore[assignment]
        benign = _file(t, "benign", base, required=False)
        if benign is not None:
            files["benign"] = benign
        options["strings"] = t.strings("strings")
        if tolerance > 1:
            raise SpecError(f"{t.at('tolerance')}: a refusal rate is on a 0-1 scale; expected at most 1, got {tolerance:g}")
    else:
        if task != "classification":
            raise SpecError(f"{t.where}: calibration needs label probabilities, so a classification suite "
                            f"(task is {task!r})")
        options["bins"] = t.integer("bins", 10, minimum=2)
        options["resamples"] = t.integer("resamples", 1000, minimum=100)
    if name in (AGREEMENT, REFUSALS):
        options["max_new_tokens"] = t.integer("max_new_tokens", 24, minimum=1)
    return CheckSpec(name, tolerance, _names(t, "candidates", candidates), files, options)


def check_collateral(t: Table | None, base: Path, *, task: str, candidates: dict[str, Any]) -> CollateralSpec | None:
    """Parse and check ``[suites.<name>.collateral]`` (None when absent); errors name the key."""
    if t is None:
        return None
    Table(t.data, t.where, ("reference", "candidates", *CHECKS))
    reference = t.string("reference", "base")
    if candidates and reference not in candidates:
        raise SpecError(f"{t.at('reference')}: no candidate {reference!r} in this suite "
                        f"(known: {', '.join(sorted(candidates))})")
    checks = {name: _check(name, t.table(name, known=_KEYS[name]), base, task, candidates)  # type: ignore[arg-type]
              for name in CHECKS if name in t}
    if not checks:
        raise SpecError(f"{t.where}: no check declared (add one of: {', '.join(f'[{t.where}.{c}]' for c in CHECKS)})")
    return CollateralSpec(reference, _names(t, "candidates", candidates), checks)
