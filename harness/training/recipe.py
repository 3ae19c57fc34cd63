"""A recipe per trainer (defaults, value checks, build the trainer, save) and the one fit every
recipe goes through: train (resuming from the last whole checkpoint), evaluate the kept model,
drop scratch checkpoints, summarise.

The backends define the recipes (LoRA and full fine-tuning of causal LMs in
``harness.backends.hf``, encoder LoRA / full in ``harness.backends.encoder``) and pass them in;
nothing here imports a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.data.records import Split
from harness.training.data_loss import DataLossLimits, check_data_loss
from harness.training.divergence import check_final_losses
from harness.training.params import cache_params, check_common_params, merge_params
from harness.training.resume import checkpoint_step, last_complete_checkpoint
from harness.training.summary import RunFacts, TuningSummary, count_parameters, summarise_run


@dataclass(frozen=True)
class TrainingJob:
    """What one run trains on: the model it starts from, the data, checked parameters, seed."""

    model_dir: Path  # a causal-LM base, or an encoder with its seeded classification head
    train: Split
    validation: Split | None
    params: Mapping[str, Any]  # effective parameters (defaults filled in, checked)
    seed: int = 0
    labels: tuple[str, ...] = ()  # the suite's labels (classification heads)
    aliases: Mapping[str, str] = field(default_factory=dict)  # reference spellings of the labels
    on_log: Callable[[dict[str, Any]], None] | None = None  # every trainer log entry, as it happens
    limits: DataLossLimits | None = None  # the suite's training-data loss limits, checked before training


@dataclass
class Prepared:
    """A configured trainer, not yet trained, and what its data preparation counted."""

    trainer: Any  # a transformers.Trainer (TRL's SFTTrainer is one)
    tokenizer: Any
    rows_dropped: int = 0
    rows_truncated: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # recorded beside the parameters


@dataclass(frozen=True)
class Recipe:
    """How one kind of candidate is trained; the lifecycle does everything around it."""

    kind: str  # the spec kind ("lora", "full", "encoder-lora", "encoder-full")
    title: str  # how errors name its parameters ("LoRA", "encoder lora", ...)
    namespace: str  # cache namespace of its artifacts
    defaults: Mapping[str, Any]
    prepare: Callable[[TrainingJob, Path, bool], Prepared]  # (job, output_dir, checkpointing)
    save: Callable[[Prepared, Path], None]  # write the trained artifact (main process only)
    check: Callable[[Mapping[str, Any]], None] | None = None  # checks beyond the common ones
    finish: Callable[[Prepared, TrainingJob], None] | None = None  # after training, before use
    remedies: Callable[[Mapping[str, Any]], Sequence[str]] | None = None  # out-of-memory advice
    key_fields: frozenset[str] | None = None  # see training.params.cache_params

    def params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown keys and impossible values are refused."""
        merged = merge_params(self.defaults, given, self.title)
        check_common_params(merged)
        if self.check is not None:
            self.check(merged)
        return merged

    def key_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters the cache key of a run hashes."""
        return cache_params(params, self.defaults, self.key_fields)

    def oom_remedies(self, params: Mapping[str, Any]) -> list[str]:
        """This trainer's own out-of-memory remedies (the generic ones are added around them)."""
        return list(self.remedies(params)) if self.remedies is not None else []

    def fit(self, job: TrainingJob, work_dir: Path, *, checkpoint_dir: Path | None = None,
            log: Callable[[str], None] | None = None) -> tuple[Prepared, TuningSummary]:
        """Train without saving; returns the trained ``Prepared`` and the summary.

        Checkpoints go to ``checkpoint_dir`` (kept, and resumed from on the next call) when given,
        else to a scratch folder in ``work_dir`` that is removed afterwards.
        """
        scratch = Path(work_dir) / "_checkpoints"
        prepared = self.prepare(job, checkpoint_dir or scratch, checkpoint_dir is not None)
        check_data_loss(job.limits, rows=len(job.train), dropped=rows_dropped(prepared, job),
                        truncated=prepared.rows_truncated, max_length=job.params.get("max_length"))
        summary = fit_and_summarise(prepared, job, checkpoint_dir=checkpoint_dir, scratch=scratch, log=log)
        summary.defaults = dict(self.defaults)
        if self.finish is not None:
            self.finish(prepared, job)
        return prepared, summary

    def train(self, job: TrainingJob, out_dir: Path, *, checkpoint_dir: Path | None = None,
              log: Callable[[str], None] | None = None) -> TuningSummary:
        """Train and save the artifact into ``out_dir``."""
        prepared, summary = self.fit(job, out_dir, checkpoint_dir=checkpoint_dir, log=log)
        self.save(prepared, Path(out_dir))
        return summary


def rows_dropped(prepared: Prepared, job: TrainingJob) -> int:
    """Train rows the trainer will not see: counted before (all labels masked) or missing after its
    own data preparation (TRL filters such rows out), whichever is more."""
    kept = getattr(prepared.trainer, "train_dataset", None)
    return max(prepared.rows_dropped, len(job.train) - len(kept) if kept is not None else 0)


def run_trainer(trainer: Any, checkpoints: Path | None,
                log: Callable[[str], None] | None = None) -> tuple[Any, int | None]:
    """``trainer.train()``, resumed from the last whole checkpoint in ``checkpoints`` if one is
    there; returns the train output and the step it resumed from (None for a fresh run)."""

    checkpoint = last_complete_checkpoint(checkpoints) if checkpoints is not None else None
    if checkpoint is None:
        return trainer.train(), None
    if log:
        log(f"resuming from {checkpoint.name} in {checkpoint.parent}")
    return trainer.train(resume_from_checkpoint=str(checkpoint)), checkpoint_step(checkpoint)


def fit_and_summarise(prepared: Prepared, job: TrainingJob, *, checkpoint_dir: Path | None, scratch: Path,
                      log: Callable[[str], None] | None) -> TuningSummary:
    """Train (resuming from ``checkpoint_dir`` when it holds a checkpoint), evaluate the kept
    model, drop the scratch checkpoints and summarise the run."""
    import shutil
    import time


    trainer, has_eval = prepared.trainer, job.validation is not None
    trainable, total = count_parameters(trainer.model)
    began = time.perf_counter()
    output, resumed = run_trainer(trainer, checkpoint_dir, log)
    runtime = time.perf_counter() - began
    trained_entries = len(trainer.state.log_history)
    check_final_losses(output.training_loss, None, trainer.state.global_step)
    final = dict(trainer.evaluate()) if has_eval else {}
    check_final_losses(None, final.get("eval_loss"), trainer.state.global_step)
    shutil.rmtree(scratch, ignore_errors=True)
    params = dict(job.params)
    return summarise_run(RunFacts(
        params=params, seed=job.seed, runtime_s=runtime, trainable_params=trainable, total_params=total,
        training_loss=float(output.training_loss), global_step=trainer.state.global_step,
        max_steps=trainer.state.max_steps, log_history=list(trainer.state.log_history),
        train_history_length=trained_entries,
        eval_loss=float(final["eval_loss"]) if has_eval else None,
        rows_dropped=rows_dropped(prepared, job),
        rows_truncated=prepared.rows_truncated,
        resumed_from_step=resumed, best_checkpoint=trainer.state.best_model_checkpoint
        if trainer.args.load_best_model_at_end else None,
        early_stopping=bool(params.get("early_stopping_patience")) and has_eval,
        extra_hyperparameters=prepared.hyperparameters, final_metrics=final, train_rows=len(job.train),
    ))
