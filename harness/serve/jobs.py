"""The fine-tuning worker: validates files, trains a LoRA adapter, publishes the model.

One background thread takes jobs in creation order through OpenAI's statuses
(``validating_files`` → ``queued`` → ``running`` → ``succeeded`` / ``failed`` / ``cancelled``),
writing events, per-epoch checkpoints with train / valid loss, and a step-metrics CSV as the
job's result file. Cancelling (or shutting the server down) stops training at its next log step.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.backends.hf.lora import train_lora
from harness.data import load_split
from harness.errors import DatasetError
from harness.protocol import TrainingSummary
from harness.serve.backend import ModelBackend
from harness.serve.store import ACTIVE, TERMINAL, JobRecord, Store, new_id, now

log = logging.getLogger(__name__)
TrainFn = Callable[..., TrainingSummary]
_SUFFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class TrainingDefaults:
    """What ``"auto"`` hyperparameters resolve to, and the LoRA settings the server trains with."""

    n_epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-3  # × learning_rate_multiplier
    min_examples: int = 1
    lora: Mapping[str, Any] = field(default_factory=lambda: {"r": 8, "alpha": 16,
                                                            "logging_steps": 1})


class _Stopped(Exception):
    """Raised inside the trainer's log callback to stop a cancelled job."""


def fine_tuned_model_id(base: str, suffix: str | None, job_id: str) -> str:
    """OpenAI's naming: ``ft:{base}:{suffix}:{id}`` (empty suffix field when none)."""
    return f"ft:{base}:{suffix or ''}:{job_id.removeprefix('ftjob-')}"


def resolve_hyperparameters(requested: Mapping[str, Any], n_examples: int,
                            defaults: TrainingDefaults) -> dict[str, Any]:
    """Replace ``"auto"`` / missing values by the server's defaults (batch ≤ examples)."""
    n_epochs = requested.get("n_epochs", "auto")
    batch = requested.get("batch_size", "auto")
    multiplier = requested.get("learning_rate_multiplier", "auto")
    return {
        "n_epochs": defaults.n_epochs if n_epochs in (None, "auto") else int(n_epochs),
        "batch_size": (max(1, min(defaults.batch_size, n_examples)) if batch in (None, "auto")
                       else int(batch)),
        "learning_rate_multiplier": 1.0 if multiplier in (None, "auto") else float(multiplier),
    }


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """OpenAI's result file layout: one row per logged step."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
    for row in rows:
        writer.writerow([row.get("step"), row.get("train_loss", ""), row.get("train_accuracy", ""),
                         row.get("valid_loss", ""), row.get("valid_mean_token_accuracy", "")])
    return out.getvalue()


class FineTuneWorker:
    """Runs queued jobs one at a time on a daemon thread."""

    def __init__(self, store: Store, backend: ModelBackend, *, train_fn: TrainFn | None = None,
                 defaults: TrainingDefaults | None = None) -> None:
        self.store = store
        self.backend = backend
        self.train_fn = train_fn
        self.defaults = defaults or TrainingDefaults()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._cancelled: set[str] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fine-tune-worker", daemon=True)

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread and re-queue jobs a previous server left unfinished."""
        for job in sorted(self.store.jobs.values(), key=lambda j: j.sequence):
            if job.status in ACTIVE:
                self.store.update_job(job.id, lambda j: setattr(j, "status", "validating_files"))
                self.store.add_event(job.id, "Server restarted; the job starts again.")
                self._queue.put(job.id)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current log step; unfinished jobs stay queued for the next start."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, job_id: str) -> None:
        """Queue a job for the worker."""
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> None:
        """Mark a job cancelled now; a running training stops at its next log step."""
        self._cancelled.add(job_id)

        def change(job: JobRecord) -> None:
            if job.status in TERMINAL:
                return
            job.status = "cancelled"
            job.finished_at = now()
            job.estimated_finish = None

        self.store.update_job(job_id, change)
        self.store.add_event(job_id, "Fine-tuning job cancelled.")

    # -- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            if job_id in self._cancelled:
                continue
            try:
                self._run(job_id)
            except _Stopped:
                if job_id not in self._cancelled:  # server shutting down: run again next start
                    return
            except Exception as exc:  # a crash fails the job, never the server
                log.exception("fine-tuning job %s crashed", job_id)
                self._fail(job_id, "training_failed", f"Training failed: {type(exc).__name__}: {exc}")

    def _fail(self, job_id: str, code: str, message: str, param: str | None = None) -> None:
        if job_id in self._cancelled:
            return

        def change(job: JobRecord) -> None:
            if job.status == "cancelled":
                return
            job.status = "failed"
            job.error = {"code": code, "message": message, "param": param}
            job.finished_at = now()
            job.estimated_finish = None

        self.store.update_job(job_id, change)
        self.store.add_event(job_id, message, level="error")

    def _set_status(self, job_id: str, status: str, message: str) -> None:
        def change(job: JobRecord) -> None:
            if job.status == "cancelled":
                raise _Stopped
            job.status = status

        self.store.update_job(job_id, change)
        self.store.add_event(job_id, message)

    def _load(self, job: JobRecord, file_id: str | None, param: str):
        """A validated :class:`Split` of an uploaded file, or None after failing the job."""

        if file_id is None:
            return None
        record = self.store.files.get(file_id)
        if record is None:
            raise _InvalidFile(param, f"File {file_id} was deleted before the job could use it.")
        path = self.store.file_path(record)
        try:
            split = load_split(path, name=param.removesuffix("_file"), format="chat")
        except DatasetError as exc:
            raise _InvalidFile(param, f"Invalid file {file_id} ({record.filename}): "
                               + str(exc).replace(str(path), record.filename)) from None
        if len(split) < self.defaults.min_examples:
            raise _InvalidFile(param, f"File {file_id} has {len(split)} example(s); at least "
                               f"{self.defaults.min_examples} are required.")
        return split

    def _run(self, job_id: str) -> None:
        job = self.store.jobs[job_id]
        self.store.add_event(job_id, f"Validating training file: {job.training_file}"
                             + (f" and validation file: {job.validation_file}" if job.validation_file else ""))
        try:
            train = self._load(job, job.training_file, "training_file")
            validation = self._load(job, job.validation_file, "validation_file")
        except _InvalidFile as exc:
            self._fail(job_id, f"invalid_{exc.param}", str(exc), exc.param)
            return
        hyper = resolve_hyperparameters(job.hyperparameters, len(train), self.defaults)
        tokens_per_epoch = sum(self.backend.count_tokens(job.model, ex.messages) for ex in train.examples)

        def resolved(j: JobRecord) -> None:
            j.hyperparameters = hyper
        self.store.update_job(job_id, resolved)
        self._set_status(job_id, "queued", "Files validated, moving job to queued state")
        self._set_status(job_id, "running", "Fine-tuning job started")
        self._train(job_id, train, validation, hyper, tokens_per_epoch)

    def _train(self, job_id: str, train, validation, hyper: dict[str, Any], tokens_per_epoch: int) -> None:
        job = self.store.jobs[job_id]
        steps_per_epoch = math.ceil(len(train) / hyper["batch_size"])
        total_steps = steps_per_epoch * hyper["n_epochs"]
        out_dir = self.store.models_dir / job_id
        shutil.rmtree(out_dir, ignore_errors=True)
        rows: list[dict[str, Any]] = []
        started = time.monotonic()

        def on_log(entry: dict[str, Any]) -> None:
            if job_id in self._cancelled or self._stopping.is_set():
                raise _Stopped
            self._record_log(job_id, entry, rows, total_steps, steps_per_epoch, started)

        params = {**self.defaults.lora, "n_epochs": hyper["n_epochs"], "batch_size": hyper["batch_size"],
                  "learning_rate": self.defaults.learning_rate * hyper["learning_rate_multiplier"]}
        train_fn = self.train_fn
        if train_fn is None:

            train_fn = train_lora
        summary = train_fn(self.backend.base_dir(job.model), train, validation, params, out_dir,
                           seed=job.seed, on_log=on_log)
        if job_id in self._cancelled:
            raise _Stopped
        if self._stopping.is_set():
            raise _Stopped
        model_id = fine_tuned_model_id(job.model, job.suffix, job_id)
        self._final_checkpoint(job_id, model_id, summary, rows, total_steps)
        self.backend.add_adapter(model_id, out_dir)
        result = self.store.add_result_file(metrics_csv(rows), f"step_metrics_{job_id}.csv")

        def succeed(j: JobRecord) -> None:
            if j.status == "cancelled":
                raise _Stopped
            j.status = "succeeded"
            j.fine_tuned_model = model_id
            j.finished_at = now()
            j.estimated_finish = None
            j.trained_tokens = tokens_per_epoch * hyper["n_epochs"]
            self.store.set_adapter_dir(j, out_dir)
            j.result_files = [result.id]

        self.store.update_job(job_id, succeed)
        self.store.add_event(job_id, f"New fine-tuned model created: {model_id}")
        self.store.add_event(job_id, "The job has successfully completed")

    def _record_log(self, job_id: str, entry: dict[str, Any], rows: list[dict[str, Any]],
                    total_steps: int, steps_per_epoch: int, started: float) -> None:
        step = int(entry.get("step", 0))
        if "loss" in entry:
            row = {"step": step, "train_loss": float(entry["loss"]),
                   "train_mean_token_accuracy": entry.get("mean_token_accuracy")}
            rows.append(row)
            elapsed = time.monotonic() - started
            eta = int(time.time() + elapsed / max(step, 1) * (total_steps - step)) if step else None
            self.store.update_job(job_id, lambda j: setattr(j, "estimated_finish", eta), persist=False)
            self.store.add_event(job_id, f"Step {step}/{total_steps}: training loss={row['train_loss']:.4f}",
                                 data={"step": step, "train_loss": row["train_loss"],
                                       "total_steps": total_steps}, type="metrics")
        if "eval_loss" in entry:
            valid_loss = float(entry["eval_loss"])
            if rows and rows[-1]["step"] == step:
                rows[-1]["valid_loss"] = valid_loss
            else:
                rows.append({"step": step, "valid_loss": valid_loss})
            self._checkpoint(job_id, step, rows)

    def _checkpoint(self, job_id: str, step: int, rows: list[dict[str, Any]]) -> None:
        train_losses = [r["train_loss"] for r in rows if "train_loss" in r]
        valid = next((r["valid_loss"] for r in reversed(rows) if "valid_loss" in r), None)
        job = self.store.jobs[job_id]
        checkpoint = {
            "id": new_id("ftckpt"), "object": "fine_tuning.job.checkpoint", "created_at": now(),
            "fine_tuned_model_checkpoint":
                f"{fine_tuned_model_id(job.model, job.suffix, job_id)}:ckpt-step-{step}",
            "fine_tuning_job_id": job_id, "step_number": step,
            "metrics": {"step": float(step), "train_loss": train_losses[-1] if train_losses else None,
                        "valid_loss": valid, "full_valid_loss": valid},
        }

        def add(j: JobRecord) -> None:  # a second evaluation at the same step updates its checkpoint
            j.checkpoints[:] = [c for c in j.checkpoints if c["step_number"] != step] + [checkpoint]

        self.store.update_job(job_id, add)

    def _final_checkpoint(self, job_id: str, model_id: str, summary: TrainingSummary,
                          rows: list[dict[str, Any]], total_steps: int) -> None:
        job = self.store.jobs[job_id]
        if job.checkpoints and job.checkpoints[-1]["step_number"] == total_steps:
            checkpoint = job.checkpoints[-1]
        else:
            self._checkpoint(job_id, total_steps, rows)
            checkpoint = self.store.jobs[job_id].checkpoints[-1]

        def finalise(_: JobRecord) -> None:
            if summary.eval_loss is not None:
                checkpoint["metrics"]["full_valid_loss"] = summary.eval_loss
            checkpoint["fine_tuned_model_checkpoint"] = model_id

        self.store.update_job(job_id, finalise)


class _InvalidFile(Exception):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def valid_suffix(suffix: str) -> bool:
    """A model-name suffix: 1 to 64 letters, digits, '-', '_' or '.'."""
    return bool(_SUFFIX.match(suffix))
