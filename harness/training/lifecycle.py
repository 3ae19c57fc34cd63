"""One training lifecycle for every trained candidate (LoRA, full, encoder LoRA, encoder full).

:func:`plan_training` checks the parameters (naming a bad one by its key path), loads the data
and computes the cache key; :func:`train_cached` returns the cached artifact or trains it:
checkpoints go to ``<cache root>/work/<key>/`` and an interrupted run resumes from there; any
failure becomes a ``TrainingError`` with the traceback kept in a file (out of memory: with
remedies). Under ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` > 1) every process
trains together into the shared work folder and the main process stores the result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import cache_key, library_versions
from harness.context import BuildContext
from harness.data.records import Split
from harness.errors import HarnessError, SpecError
from harness.spec import CandidateSpec, SuiteSpec
from harness.training.arguments import schedule_arguments
from harness.training.data_loss import DataLossLimits, check_data_loss
from harness.training.divergence import TrainingDiverged
from harness.training.failure import training_failure, write_traceback
from harness.training.hardware import cpu_only, world_size
from harness.training.parallel import record_parallelism
from harness.training.params import ParamError
from harness.training.recipe import Recipe, TrainingJob
from harness.training.resume import checkpoints_dir, remove_work_dir, work_dir
from harness.training.summary import TuningSummary, summary_from_dict

__all__ = ["TrainingPlan", "candidate_where", "load_training_splits", "plan_training", "summary_from_dict",
           "train_cached", "world_size"]


@dataclass
class TrainingPlan:
    """Everything that determines one trained candidate, and the cache key it is stored under."""

    suite: SuiteSpec
    spec: CandidateSpec
    recipe: Recipe
    key: str
    model_dir: Path  # what training starts from
    train: Split
    validation: Split | None
    params: dict[str, Any]  # effective parameters (defaults filled in, checked)
    seed: int
    where: str  # ``<spec file>: suites.<suite>.candidates.<name>``

    @property
    def kind(self) -> str:
        """The recipe's kind ("lora", "full", "encoder-lora", "encoder-full")."""
        return self.recipe.kind

    def job(self, on_log: Callable[[dict[str, Any]], None] | None = None) -> TrainingJob:
        """The run this plan describes."""
        return TrainingJob(self.model_dir, self.train, self.validation, self.params, self.seed,
                           tuple(self.suite.labels), dict(self.suite.label_aliases), on_log,
                           DataLossLimits.of_suite(self.suite, self.where))

    def checked(self, summary: TuningSummary) -> TuningSummary:
        """``summary`` of a (cached) training run, refused when its data loss exceeds the suite's limits."""
        check_data_loss(DataLossLimits.of_suite(self.suite, self.where), rows=len(self.train),
                        dropped=summary.rows_dropped, truncated=summary.rows_truncated,
                        max_length=self.params.get("max_length"), cached=True)
        return summary

    def run(self, out_dir: Path, *, checkpoint_dir: Path | None = None,
            log: Callable[[str], None] | None = None) -> TuningSummary:
        """Train into ``out_dir`` (checkpointing into ``checkpoint_dir`` and resuming from it)."""

        summary = self.recipe.train(self.job(), out_dir, checkpoint_dir=checkpoint_dir, log=log)
        return record_parallelism(summary, self.params)  # world size and global batch (not in the key)


def candidate_where(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec) -> str:
    """``<spec file>: suites.<suite>.candidates.<name>``, the prefix of every error about it."""
    return f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"


def load_training_splits(suite: SuiteSpec, spec_path: Path) -> tuple[Split, Split | None]:
    """The suite's train and validation splits, validated (a suite never trains on bad data)."""
    if suite.train is None:
        raise SpecError(f"{spec_path}: suite {suite.name!r} has no train split, needed to train a candidate")
    train = suite.load_split("train")
    validation = suite.load_split("validation") if suite.validation else None
    return train, validation


def checked_params(recipe: Recipe, spec: CandidateSpec, where: str, *, has_eval: bool) -> dict[str, Any]:
    """The candidate's effective parameters; a bad one is named as ``<where>.params.<key>``."""

    try:
        params = recipe.params(spec.params)
        schedule_arguments(params, has_eval=has_eval, checkpointing=True)
    except ParamError as exc:
        raise exc.located(where) from None
    except SpecError as exc:
        raise SpecError(f"{where}.params: {exc}") from None
    return params


def plan_training(ctx: BuildContext, suite: SuiteSpec, spec: CandidateSpec, recipe: Recipe,
                  source: Callable[[], tuple[Path, Mapping[str, Any]]]) -> TrainingPlan:
    """Check the parameters, load the data and compute the cache key of a trained candidate.

    ``source`` (called once the parameters pass) returns the directory training starts from
    and the backend's own key inputs (the base model's fingerprint, ...). The key hashes the
    effective parameters (defaults filled in), so a candidate that spells out a default shares
    its artifact with one that leaves it out, and search trials equal to a declared candidate
    reuse it.
    """

    where = candidate_where(ctx, suite, spec)
    params = checked_params(recipe, spec, where, has_eval=suite.validation is not None)
    model_dir, inputs = source()
    train, validation = load_training_splits(suite, ctx.spec.path)
    seed = int(spec.options.get("seed", ctx.spec.seed))
    key = cache_key(recipe.namespace, {
        **inputs,
        "train": train.fingerprint,
        "validation": validation.fingerprint if validation else None,
        "params": recipe.key_params(params),
        "seed": seed,
        "versions": library_versions(),
    })
    return TrainingPlan(suite, spec, recipe, key, model_dir, train, validation, params, seed, where)


def _guarded(plan: TrainingPlan, work: Path | None, rank: int | None, train: Callable[[], Any]) -> Any:
    """``train()``, with any failure from the libraries turned into a located ``TrainingError``."""

    try:
        return train()
    except TrainingDiverged as exc:
        if work is not None:  # its checkpoints hold non-finite weights: never resume from them

            remove_work_dir(work)
        raise exc.located(plan.where) from None
    except SpecError as exc:
        raise SpecError(f"{plan.where}: {exc}") from None
    except HarnessError:
        raise
    except Exception as exc:  # anything from torch / transformers / peft / trl
        raise training_failure(exc, where=plan.where, params=plan.params,
                               remedies=plan.recipe.oom_remedies(plan.params),
                               traceback_file=write_traceback(work, plan.key, exc, rank)) from None


def _report(ctx: BuildContext, label: str, summary: TuningSummary) -> None:
    if summary.resumed_from_step:
        ctx.count("resumed")
    for note in summary.notes:
        if note.startswith(("overfitting", "early stopping")):
            ctx.log(f"{label}: {note}")


def train_cached(ctx: BuildContext, plan: TrainingPlan) -> tuple[Any, TuningSummary]:
    """The trained artifact of ``plan`` from the cache, training it on a miss.

    Training checkpoints into ``<cache root>/work/<key>/`` and resumes from there after an
    interruption; the folder goes once the artifact is stored. Returns ``(cache_result, summary)``.
    """

    if world_size() > 1:
        return _train_together(ctx, plan)
    resumable = bool(ctx.cache.enabled and ctx.options.resume)
    work = work_dir(ctx.cache_root, plan.key) if resumable else None
    label = f"{plan.suite.name}/{plan.spec.name}"

    def build(tmp: Path) -> dict[str, Any]:
        ctx.log(f"training {label} ({plan.kind}) on {len(plan.train)} examples")
        ctx.count("trained")
        summary = plan.run(tmp, checkpoint_dir=checkpoints_dir(work) if work else None, log=ctx.log)
        _report(ctx, label, summary)
        return {"training": summary.as_dict()}

    entry = _guarded(plan, work, None, lambda: ctx.cache.get_or_build(
        plan.key, build, description=f"{plan.kind} {label}"))
    if work is not None:
        remove_work_dir(work)
    return entry, plan.checked(summary_from_dict(entry.metadata["training"]))


def _train_together(ctx: BuildContext, plan: TrainingPlan) -> tuple[Any, TuningSummary]:
    """Every process trains ``plan`` data-parallel into the shared work folder; the main one stores
    the artifact, then each process takes it from the cache."""
    import shutil

    from accelerate import PartialState


    if not ctx.cache.enabled:
        raise HarnessError(f"{plan.where}: training in several processes needs the cache (its work folder "
                           "is where they meet); run without --no-cache")
    state = PartialState(cpu=cpu_only())  # several CPU processes: accelerate's multi-CPU mode
    main = state.is_main_process
    label = f"{plan.suite.name}/{plan.spec.name}"
    if ctx.cache.info(plan.key) is None:
        work = work_dir(ctx.cache_root, plan.key)
        if not ctx.options.resume and main:
            remove_work_dir(work)
        state.wait_for_everyone()
        if main:
            ctx.log(f"training {label} ({plan.kind}) on {len(plan.train)} examples "
                    f"in {state.num_processes} processes")
            ctx.count("trained")
        output = work / "output"
        summary = _guarded(plan, work, state.process_index, lambda: plan.run(
            output, checkpoint_dir=checkpoints_dir(work), log=ctx.log if main else None))
        state.wait_for_everyone()
        if main:
            _report(ctx, label, summary)

            def store(tmp: Path) -> dict[str, Any]:
                shutil.copytree(output, tmp, dirs_exist_ok=True)
                return {"training": summary.as_dict()}

            ctx.cache.get_or_build(plan.key, store, description=f"{plan.kind} {label}")
            remove_work_dir(work)
        state.wait_for_everyone()

    def stored_already(tmp: Path) -> dict[str, Any]:
        raise HarnessError(f"{plan.where}: the main process did not store the trained artifact")

    entry = ctx.cache.get_or_build(plan.key, stored_already, description=f"{plan.kind} {label}")
    return entry, plan.checked(summary_from_dict(entry.metadata["training"]))
