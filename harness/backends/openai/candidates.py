"""The ``kind = "openai"`` candidate of a spec: options checked, data loaded, job run or re-attached."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.backends.openai.finetune import OpenAIFineTuneCandidate, fine_tune
from harness.backends.openai.options import (
    CLIENT_OPTIONS,
    client_config_from_options,
    pricing_from_spec,
)
from harness.backends.openai.state import FineTuneSettings
from harness.errors import SpecError
from harness.spec.registry import ParamProblem
from harness.training.lifecycle import candidate_where, load_training_splits

OPTIONS = (*CLIENT_OPTIONS, "suffix", "max_cost", "poll_interval_s", "job_timeout_s", "seed")
PARAMS = frozenset({"n_epochs", "batch_size", "learning_rate_multiplier"})


def openai_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI's fine-tuning hyperparameters: each ``"auto"`` or a positive number (whole for
    ``n_epochs`` and ``batch_size``)."""
    for key, value in params.items():
        whole = key != "learning_rate_multiplier"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value == "auto" or (number and value > 0 and (not whole or float(value).is_integer())):
            continue
        raise ParamProblem(key, f"expected \"auto\" or a positive {'integer' if whole else 'number'}, got {value!r}")
    return dict(params)


def build_openai(ctx, suite, spec) -> OpenAIFineTuneCandidate:
    """Build the ``kind = "openai"`` candidate of a suite (registry entry point)."""
    where = candidate_where(ctx, suite, spec)
    unknown = sorted(set(spec.options) - set(OPTIONS)) or sorted(set(spec.params) - PARAMS)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r} (options: {', '.join(sorted(OPTIONS))}; "
                        f"params: {', '.join(sorted(PARAMS))})")
    if "model" not in spec.options:
        raise SpecError(f"{where}: missing key 'model' (the base model to fine-tune)")
    max_cost = ctx.options.openai_max_cost
    if max_cost is None:
        max_cost = spec.options.get("max_cost")
    settings = FineTuneSettings(
        base_model=str(spec.options["model"]),
        n_epochs=spec.params.get("n_epochs", "auto"),
        batch_size=spec.params.get("batch_size", "auto"),
        learning_rate_multiplier=spec.params.get("learning_rate_multiplier", "auto"),
        suffix=spec.options.get("suffix"),
        seed=int(spec.options.get("seed", ctx.spec.seed)),
        max_cost=float(max_cost) if max_cost is not None else None,
        poll_interval_s=float(spec.options.get("poll_interval_s", 5.0)),
        job_timeout_s=spec.options.get("job_timeout_s"),
    )
    config = client_config_from_options(spec.options, where)
    train, validation = load_training_splits(suite, ctx.spec.path)
    state_dir = Path(ctx.cache.root) / "openai-jobs"
    candidate = fine_tune(train, validation, settings, config=config, state_dir=state_dir,
                          name=spec.name, pricing=pricing_from_spec(ctx.spec.pricing),
                          progress=ctx.log, request_options=spec.options.get("request_options"))
    ctx.count("openai_fine_tuned")
    return candidate
