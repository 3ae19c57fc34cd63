"""OpenAI fine-tuning as a candidate: upload → job → poll (with events) → score via chat.

Works against OpenAI or any server with the same files / fine_tuning API (``ft-harness
serve``). Paying twice is the failure to avoid, so:

* the job's state (file ids, job id, model) is written to a small JSON file keyed by the
  content of the training data, the hyperparameters and the base model (never the API key)
  the moment each id exists; a rerun re-attaches to the job instead of creating another
  (:mod:`.state`);
* before each upload or job creation attempt the server is asked whether an earlier attempt
  (whose reply was lost) already made it: files by content-addressed name, jobs by a
  ``metadata`` tag carrying the key (:mod:`.uploads`);
* a cost guard refuses a job whose estimated training cost exceeds ``max_cost`` (:mod:`.costguard`).

This module is the job's lifecycle: create or re-attach, poll with events, cancel duplicates,
summarise, and the candidate that scores the fine-tuned model.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.backends.http import ClientConfig, RemoteCallError, call_endpoint, make_client
from harness.backends.openai.client import ChatGenerator
from harness.backends.openai.costguard import check_cost
from harness.backends.openai.options import fingerprint_of
from harness.backends.openai.state import (
    METADATA_KEY,
    TERMINAL,
    FineTuneSettings,
    JobState,
    chat_jsonl,
    job_key,
)
from harness.backends.openai.uploads import Uploader, exactly_once
from harness.cost import PricingTable
from harness.data.records import Message, Split
from harness.errors import TrainingError
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary
from harness.secrets import redact_text

KIND = "openai"


def _stderr(message: str) -> None:
    print(f"[ft-harness] {message}", file=sys.stderr, flush=True)


@dataclass
class OpenAIFineTuneCandidate(Candidate):
    """A fine-tuned model behind an OpenAI-compatible API, scored through chat completions."""

    name: str
    model: str
    config: ClientConfig
    job_id: str
    training: TrainingSummary | None = None
    kind: str = KIND
    request_options: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint_of(self.config.public_base_url, self.model,
                                              self.request_options)
        self._generator = ChatGenerator(self.config, self.model, extra_body=self.request_options)

    def priced_model(self) -> str | None:
        """The remote model id, priced per token by the report."""
        return self.model

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """One chat completion per prompt, with token usage and latency."""
        return self._generator.generate(prompts, params)


class FineTuneRun:
    """One fine-tune from data to a servable model; safe to kill and run again."""

    def __init__(self, train: Split, validation: Split | None, settings: FineTuneSettings, *,
                 config: ClientConfig, state_dir: Path, pricing: PricingTable | None = None,
                 progress: Callable[[str], None] = _stderr, count_tokens: Any = None,
                 client: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        if len(train) == 0:
            raise TrainingError(f"{train.path}: the training split is empty")
        self.train, self.validation, self.settings = train, validation, settings
        self.config = config
        self.pricing = pricing or PricingTable()
        self.progress = progress
        self.count_tokens = count_tokens
        self.sleep = sleep
        self._client = client
        self.train_bytes = chat_jsonl(train)
        self.validation_bytes = chat_jsonl(validation) if validation is not None else None
        self.key = job_key(self.train_bytes, self.validation_bytes, settings)
        self.state_path = Path(state_dir) / f"{self.key}.json"
        self._seen_events: set[str] = set()
        self._duplicates_possible = False

    # -- helpers -------------------------------------------------------------------------------
    @property
    def client(self):
        """The SDK client, built on first use."""
        if self._client is None:
            self._client = make_client(self.config)
        return self._client

    def _call(self, operation: Callable[[], Any], what: str) -> Any:
        __tracebackhide__ = True
        return call_endpoint(self.config, operation, what=what, sleep=self.sleep,
                             on_retry=lambda n, why, wait: self.progress(f"{what}: {why}; retrying in {wait:.1f}s"))

    @property
    def _settle_s(self) -> float:
        settle = self.settings.lost_reply_settle_s
        return self.config.timeout_s if settle is None else settle

    def _maybe_duplicate(self) -> None:
        self._duplicates_possible = True

    # -- the flow --------------------------------------------------------------------------------
    def run(self) -> tuple[Any, JobState]:
        """Create or re-attach to the job and wait until it ends; returns (final job, state)."""
        from filelock import FileLock

        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.state_path) + ".lock"):
            state = self._attach_or_create()
        job = self._wait(state)
        return job, state

    def _attach_or_create(self) -> JobState:
        state = JobState.load(self.state_path)
        if state is not None and state.job_id:
            job = self._retrieve_if_exists(state.job_id)
            if job is not None:
                self.progress(f"re-attaching to fine-tuning job {state.job_id} ({job.status})")
                return state
            self.progress(f"job {state.job_id} from {self.state_path} is unknown to "
                          f"{self.config.public_base_url}; starting a new one")
            state.job_id = state.training_file = state.validation_file = None
        if state is None or state.base_url != self.config.public_base_url:
            state = JobState(self.key, self.config.public_base_url, self.settings.base_model)
        existing = self._find_job()
        if existing is not None:  # created by a run that died before saving the id
            self.progress(f"found fine-tuning job {existing.id} made by an earlier run; re-attaching")
            state.job_id, state.status = existing.id, existing.status
            state.save(self.state_path)
            return state
        state.estimated_cost = check_cost(self.train, self.settings, self.pricing,
                                          count_tokens=self.count_tokens, progress=self.progress)
        uploader = Uploader(self.client, self._call, self.progress, self._settle_s,
                            poll_interval_s=self.settings.poll_interval_s,
                            ready_timeout_s=self.settings.file_ready_timeout_s, sleep=self.sleep,
                            on_maybe_duplicate=self._maybe_duplicate)
        state.training_file = uploader.upload(state.training_file, "train", self.train_bytes)
        state.save(self.state_path)
        if self.validation_bytes is not None:
            state.validation_file = uploader.upload(state.validation_file, "validation",
                                                    self.validation_bytes)
            state.save(self.state_path)
        job = self._create_job(state)
        state.job_id, state.status = job.id, job.status
        state.save(self.state_path)
        self.progress(f"created fine-tuning job {job.id} on {self.settings.base_model}")
        return state

    def _retrieve_if_exists(self, job_id: str):
        try:
            return self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id),
                              f"retrieve fine-tuning job {job_id}")
        except RemoteCallError as exc:
            if exc.status_code == 404:
                return None
            raise

    def _find_job(self):
        """A job tagged with this run's key, if an earlier attempt created one."""
        def search():
            listing = self.client.fine_tuning.jobs.list(limit=100, metadata={METADATA_KEY: self.key})
            for job in listing.data:
                if (job.metadata or {}).get(METADATA_KEY) == self.key and job.status not in ("failed", "cancelled"):
                    return job
            return None

        return self._call(search, "list fine-tuning jobs")

    def _create_job(self, state: JobState):
        settings = self.settings
        request: dict[str, Any] = {
            "model": settings.base_model,
            "training_file": state.training_file,
            "method": {"type": "supervised",
                       "supervised": {"hyperparameters": settings.hyperparameters()}},
            "seed": settings.seed,
            "metadata": {METADATA_KEY: self.key},
        }
        if state.validation_file:
            request["validation_file"] = state.validation_file
        if settings.suffix:
            request["suffix"] = settings.suffix

        def create():
            return self.client.fine_tuning.jobs.create(**request)

        attempt = exactly_once(self._find_job, create, settle_s=self._settle_s, sleep=self.sleep,
                               on_maybe_duplicate=self._maybe_duplicate)
        return self._call(attempt, "create fine-tuning job")

    def _cancel_duplicates(self, keep: str) -> None:
        """Cancel other live jobs with this run's key (made by a request whose reply was lost)."""
        def duplicates():
            listing = self.client.fine_tuning.jobs.list(limit=100, metadata={METADATA_KEY: self.key})
            return [job.id for job in listing.data if job.id != keep and job.status not in TERMINAL
                    and (job.metadata or {}).get(METADATA_KEY) == self.key]

        for job_id in self._call(duplicates, "list fine-tuning jobs"):
            try:
                self._call(partial(self.client.fine_tuning.jobs.cancel, job_id), f"cancel duplicate job {job_id}")
            except RemoteCallError as exc:
                if exc.status_code != 400:  # 400: it finished meanwhile
                    raise
                continue
            self.progress(f"cancelled duplicate fine-tuning job {job_id} (made by a request whose "
                          f"reply was lost); keeping {keep}")

    def _report_events(self, job_id: str) -> None:
        events = self._call(lambda: self.client.fine_tuning.jobs.list_events(job_id, limit=100),
                            f"list events of {job_id}").data
        for event in reversed(events):  # the API lists newest first
            if event.id not in self._seen_events:
                self._seen_events.add(event.id)
                self.progress(f"{job_id}: {event.message}")

    def _wait(self, state: JobState):
        started = time.monotonic()
        job_id = state.job_id
        if job_id is None:
            raise RemoteCallError("fine-tuning job state has no job id to wait for")
        while True:
            job = self._call(lambda: self.client.fine_tuning.jobs.retrieve(job_id),
                             f"retrieve fine-tuning job {job_id}")
            self._report_events(job_id)
            if self._duplicates_possible:
                self._cancel_duplicates(job_id)
            if job.status != state.status:
                state.status = job.status
                state.fine_tuned_model = job.fine_tuned_model
                state.save(self.state_path)
            if job.status in TERMINAL:
                return job
            timeout = self.settings.job_timeout_s
            if timeout is not None and time.monotonic() - started > timeout:
                raise TrainingError(f"fine-tuning job {job_id} still {job.status} after {timeout:.0f}s; "
                                    "run again to re-attach to it (it is not restarted or paid twice)")
            self.sleep(self.settings.poll_interval_s)

    def summary(self, job, state: JobState) -> TrainingSummary:
        """The training table row for a finished job (losses from its checkpoints and events)."""
        jobs = self.client.fine_tuning.jobs
        checkpoints = self._call(lambda: list(jobs.checkpoints.list(job.id, limit=100)),
                                 f"list checkpoints of {job.id}")
        events = self._call(lambda: list(jobs.list_events(job.id, limit=100)),  # every page
                            f"list events of {job.id}")
        history = [dict(e.data) for e in reversed(events)
                   if getattr(e, "type", None) == "metrics" and isinstance(e.data, dict)]
        last = max(checkpoints, key=lambda c: c.step_number) if checkpoints else None
        train_loss = last.metrics.train_loss if last else None
        if train_loss is None and history:
            train_loss = history[-1].get("train_loss")
        eval_loss = (last.metrics.full_valid_loss or last.metrics.valid_loss) if last else None
        hyper = job.hyperparameters.model_dump() if job.hyperparameters else {}
        notes = [f"job {job.id} on {self.config.public_base_url}",
                 f"trained tokens: {job.trained_tokens}"]
        if state.estimated_cost is not None:
            notes.append(f"estimated training cost ${state.estimated_cost:.4f} "
                         f"(prices as of {self.pricing.as_of})")
        runtime = float(job.finished_at - job.created_at) if job.finished_at else 0.0
        return TrainingSummary(hyperparameters={**hyper, "base_model": job.model, "seed": job.seed},
                               runtime_s=runtime, trainable_params=0, total_params=0,
                               train_loss=train_loss, eval_loss=eval_loss, log_history=history,
                               notes=notes, cost_usd=state.estimated_cost)


def fine_tune(train: Split, validation: Split | None, settings: FineTuneSettings, *,
              config: ClientConfig, state_dir: Path, name: str = "openai",
              pricing: PricingTable | None = None, progress: Callable[[str], None] = _stderr,
              count_tokens: Any = None, request_options: Mapping[str, Any] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> OpenAIFineTuneCandidate:
    """Fine-tune (or re-attach to the job already started for this data and settings).

    Raises :class:`TrainingError` with the job's error message when it fails or is cancelled,
    and :class:`CostLimitError` before any upload when the estimate exceeds ``max_cost``.
    """
    run = FineTuneRun(train, validation, settings, config=config, state_dir=state_dir,
                      pricing=pricing, progress=progress, count_tokens=count_tokens, sleep=sleep)
    try:
        job, state = run.run()
        outcome = _check_outcome(job, run, config)
        summary = run.summary(job, state) if outcome is None else None
    except RemoteCallError as exc:  # its message names the endpoint and the status
        outcome = f"fine-tuning {settings.base_model}: {exc}"
    if outcome is not None:  # raised outside the except block: no SDK error chained
        raise TrainingError(outcome) from None
    progress(f"fine-tuned model ready: {job.fine_tuned_model}")
    return OpenAIFineTuneCandidate(name, job.fine_tuned_model, config, job.id, summary,
                                   request_options=dict(request_options or {}))


def _check_outcome(job: Any, run: FineTuneRun, config: ClientConfig) -> str | None:
    """None for a usable finished job, else the error message to raise."""
    if job.status != "succeeded":
        error = job.error.message if job.error else "no error message"
        where = f" ({job.error.param})" if job.error and job.error.param else ""
        return redact_text(f"fine-tuning job {job.id} {job.status}: {error}{where}. Its state is in "
                           f"{run.state_path}; delete that file to start a new (paid) job", config.secrets())
    if not job.fine_tuned_model:
        return f"fine-tuning job {job.id} succeeded without a fine_tuned_model"
    return None


