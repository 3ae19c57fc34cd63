"""OpenAI fine-tuning as a candidate: upload → job → poll (with events) → score via chat.

Works against OpenAI or any server with the same files / fine_tuning API (``ft-harness
serve``). Paying twice is the failure to avoid, so:

* the job's state (file ids, job id, model) is written to a small JSON file keyed by the
  content of the training data, the hyperparameters and the base model (never the API key)
  the moment each id exists; a rerun re-attaches to the job instead of creating another;
* before each upload or job creation attempt the server is asked whether an earlier attempt
  (whose reply was lost) already made it: files by content-addressed name, jobs by a
  ``metadata`` tag carrying the key;
* a cost guard refuses a job whose estimated training cost exceeds ``max_cost``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.openai.client import (
    ChatGenerator,
    ClientConfig,
    RemoteCallError,
    RetryPolicy,
    call_with_retries,
    make_client,
    redact,
)
from harness.cost import PricingTable, training_cost
from harness.data.records import Message, Split
from harness.errors import SpecError, TrainingError
from harness.protocol import DecodeParams, Generation, TrainingSummary

KIND = "openai"
METADATA_KEY = "ft_harness_key"
TERMINAL = ("succeeded", "failed", "cancelled")
STATE_VERSION = 1
Auto = str  # the literal "auto"


class CostLimitError(TrainingError):
    """The estimated training cost is above the configured ``max_cost``; no job was started."""


@dataclass(frozen=True)
class FineTuneSettings:
    """What to fine-tune and how; everything except the polling knobs is part of the state key."""

    base_model: str
    n_epochs: int | Auto = "auto"
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    suffix: str | None = None
    seed: int = 0
    max_cost: float | None = None
    poll_interval_s: float = 5.0
    job_timeout_s: float | None = None  # None: wait as long as the job takes
    file_ready_timeout_s: float = 300.0
    # After a create / upload whose reply was lost (timeout, dropped connection), wait this
    # long before asking the server whether it went through (None: the client timeout).
    lost_reply_settle_s: float | None = None

    def hyperparameters(self) -> dict[str, Any]:
        """The ``method.supervised.hyperparameters`` sent with the job."""
        return {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                "learning_rate_multiplier": self.learning_rate_multiplier}


def chat_jsonl(split: Split) -> bytes:
    """The split as OpenAI chat JSONL (``{"messages": [...]}`` per line), byte-for-byte stable."""
    lines = [json.dumps({"messages": [{"role": m["role"], "content": m["content"]} for m in ex.messages]},
                        ensure_ascii=False, sort_keys=True) for ex in split.examples]
    return ("\n".join(lines) + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def job_key(train_bytes: bytes, validation_bytes: bytes | None, settings: FineTuneSettings) -> str:
    """The state key: training + validation content, hyperparameters, base model, suffix, seed."""
    from harness.cache import cache_key

    return cache_key("openai-ft", {
        "training_file": sha256_hex(train_bytes),
        "validation_file": sha256_hex(validation_bytes) if validation_bytes is not None else None,
        "model": settings.base_model,
        "hyperparameters": settings.hyperparameters(),
        "suffix": settings.suffix,
        "seed": settings.seed,
    })


def upload_name(kind: str, data: bytes) -> str:
    """Content-addressed upload name, so a lost upload reply can be found again."""
    return f"ft-harness-{kind}-{sha256_hex(data)[:16]}.jsonl"


def fingerprint_of(base_url: str, model: str, request_options: Mapping[str, Any]) -> str:
    """sha256 of (base URL without credentials, model id, fixed request options)."""
    payload = json.dumps({"base_url": base_url, "model": model, "request": dict(request_options)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass
class JobState:
    """What is persisted about one fine-tune (no credentials)."""

    key: str
    base_url: str
    base_model: str
    training_file: str | None = None
    validation_file: str | None = None
    job_id: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    estimated_cost: float | None = None
    version: int = STATE_VERSION

    @classmethod
    def load(cls, path: Path) -> JobState | None:
        """The saved state, or None when there is none."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise TrainingError(f"{path}: unreadable fine-tuning state ({exc}); delete it to "
                                "start over (a job already created would then be created again)") from None

    def save(self, path: Path) -> None:
        """Write atomically (a crash never leaves half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.__dict__, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


def _stderr(message: str) -> None:
    print(f"[ft-harness] {message}", file=sys.stderr, flush=True)


@dataclass
class OpenAIFineTuneCandidate:
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
        return call_with_retries(operation, self.config.retry, what=what, secrets=self.config.secrets(),
                                 sleep=self.sleep,
                                 on_retry=lambda n, why, wait: self.progress(f"{what}: {why}; retrying in {wait:.1f}s"))

    def estimate_cost(self) -> tuple[float | None, str]:
        """(estimated training dollars or None when unpriced, the explanation shown to users)."""
        from harness.data.tokens import billing_tokens, default_epochs, make_counter

        counter = make_counter(self.count_tokens)
        tokens = billing_tokens([counter.conversation(ex.messages) for ex in self.train.examples])
        epochs = (self.settings.n_epochs if self.settings.n_epochs != "auto"
                  else default_epochs(len(self.train)))
        price = self.pricing.training_price(self.settings.base_model)
        if price is None:
            return None, (f"{tokens} training tokens × {epochs} epochs; no training price for "
                          f"{self.settings.base_model!r} in the pricing table (as of {self.pricing.as_of})")
        cost = training_cost(tokens, float(epochs), price)
        return cost, (f"${cost:.4f} = {tokens} training tokens ({counter.description}) × {epochs} epochs "
                      f"× ${price}/1M (prices as of {self.pricing.as_of})")

    def _check_cost(self) -> float | None:
        cost, explanation = self.estimate_cost()
        limit = self.settings.max_cost
        if limit is not None and cost is None:
            raise CostLimitError(f"refusing to start a fine-tuning job with max_cost ${limit:.2f}: "
                                 f"cannot estimate its cost ({explanation}); add the model to the "
                                 "pricing table")
        if limit is not None and cost is not None and cost > limit:
            raise CostLimitError(f"refusing to start a fine-tuning job: estimated training cost "
                                 f"{explanation} exceeds max_cost ${limit:.2f}")
        self.progress(f"estimated training cost: {explanation}")
        return cost

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
        state.estimated_cost = self._check_cost()
        state.training_file = self._upload(state.training_file, "train", self.train_bytes)
        state.save(self.state_path)
        if self.validation_bytes is not None:
            state.validation_file = self._upload(state.validation_file, "validation",
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

    def _upload(self, known_id: str | None, kind: str, data: bytes) -> str:
        client = self.client
        name = upload_name(kind, data)
        if known_id is not None:
            try:
                self._call(lambda: client.files.retrieve(known_id), f"retrieve file {known_id}")
                return known_id
            except RemoteCallError as exc:
                if exc.status_code != 404:
                    raise

        def find():
            for existing in client.files.list(purpose="fine-tune").data:
                if existing.filename == name and existing.bytes == len(data):
                    return existing
            return None

        def create():
            return client.files.create(file=(name, data, "application/jsonl"), purpose="fine-tune")

        uploaded = self._call(self._exactly_once(find, create), f"upload {kind} file")
        self.progress(f"{kind} file: {uploaded.id} ({len(data)} bytes)")
        self._wait_processed(uploaded)
        return uploaded.id

    def _wait_processed(self, uploaded) -> None:
        deadline = time.monotonic() + self.settings.file_ready_timeout_s
        status = getattr(uploaded, "status", "processed")
        while status not in ("processed", None):
            if status == "error":
                raise TrainingError(f"file {uploaded.id} failed processing: "
                                    f"{getattr(uploaded, 'status_details', '') or 'no details'}")
            if time.monotonic() > deadline:
                raise TrainingError(f"file {uploaded.id} still {status!r} after "
                                    f"{self.settings.file_ready_timeout_s:.0f}s")
            self.sleep(min(self.settings.poll_interval_s, 2.0))
            status = self._call(lambda: self.client.files.retrieve(uploaded.id),
                                f"retrieve file {uploaded.id}").status

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

        return self._call(self._exactly_once(self._find_job, create), "create fine-tuning job")

    def _exactly_once(self, find: Callable[[], Any], create: Callable[[], Any]) -> Callable[[], Any]:
        """An attempt that first looks for what an earlier attempt with a lost reply made."""
        import openai

        lost = {"reply": False}

        def attempt():
            if lost["reply"]:
                settle = self.settings.lost_reply_settle_s
                self.sleep(self.config.timeout_s if settle is None else settle)
            existing = find()
            if existing is not None:
                return existing
            try:
                return create()
            except openai.APIConnectionError:  # includes timeouts: it may have gone through
                lost["reply"] = self._duplicates_possible = True
                raise
            except openai.InternalServerError:
                self._duplicates_possible = True
                raise

        return attempt

    def _cancel_duplicates(self, keep: str) -> None:
        """Cancel other live jobs with this run's key (made by a request whose reply was lost)."""
        def duplicates():
            listing = self.client.fine_tuning.jobs.list(limit=100, metadata={METADATA_KEY: self.key})
            return [job.id for job in listing.data if job.id != keep and job.status not in TERMINAL
                    and (job.metadata or {}).get(METADATA_KEY) == self.key]

        for job_id in self._call(duplicates, "list fine-tuning jobs"):
            try:
                self._call(lambda job_id=job_id: self.client.fine_tuning.jobs.cancel(job_id),
                           f"cancel duplicate job {job_id}")
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
    except RemoteCallError as exc:
        outcome = f"fine-tuning {settings.base_model} on {config.public_base_url}: {exc}"
    if outcome is not None:  # raised outside the except block: no SDK error chained
        raise TrainingError(outcome)
    progress(f"fine-tuned model ready: {job.fine_tuned_model}")
    return OpenAIFineTuneCandidate(name, job.fine_tuned_model, config, job.id, summary,
                                   request_options=dict(request_options or {}))


def _check_outcome(job: Any, run: FineTuneRun, config: ClientConfig) -> str | None:
    """None for a usable finished job, else the error message to raise."""
    if job.status != "succeeded":
        error = job.error.message if job.error else "no error message"
        where = f" ({job.error.param})" if job.error and job.error.param else ""
        return redact(f"fine-tuning job {job.id} {job.status}: {error}{where}. Its state is in "
                      f"{run.state_path}; delete that file to start a new (paid) job", config.secrets())
    if not job.fine_tuned_model:
        return f"fine-tuning job {job.id} succeeded without a fine_tuned_model"
    return None


# -- the candidate spec kind "openai" ------------------------------------------------------------
_OPTIONS = {"model", "base_url", "api_key_env", "suffix", "max_cost", "poll_interval_s",
            "job_timeout_s", "timeout_s", "concurrency", "max_attempts", "max_tokens_field",
            "seed", "request_options"}
_PARAMS = {"n_epochs", "batch_size", "learning_rate_multiplier"}


def client_config_from_options(options: Mapping[str, Any], where: str) -> ClientConfig:
    """A :class:`ClientConfig` from spec options (``base_url``, ``api_key_env``, limits)."""
    try:
        return ClientConfig.resolve(
            base_url=options.get("base_url"),
            api_key_env=str(options.get("api_key_env", "OPENAI_API_KEY")),
            timeout_s=float(options.get("timeout_s", 60.0)),
            concurrency=int(options.get("concurrency", 4)),
            retry=RetryPolicy(max_attempts=int(options.get("max_attempts", 6))),
            max_tokens_field=str(options.get("max_tokens_field", "max_tokens")),
        )
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def pricing_from_spec(pricing: Mapping[str, Any] | None) -> PricingTable:
    """The default table overridden by ``[harness.pricing]`` (``as_of`` + ``models``, or models directly)."""
    table = PricingTable()
    if not pricing:
        return table
    models = pricing.get("models", {k: v for k, v in pricing.items() if k != "as_of"})
    try:
        return table.with_overrides(models, as_of=pricing.get("as_of"))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"harness.pricing: {exc}") from None


def build(ctx, suite, spec) -> OpenAIFineTuneCandidate:
    """Build the ``kind = "openai"`` candidate of a suite (registry entry point)."""
    from harness.backends.hf.candidates import load_training_splits

    where = f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"
    unknown = sorted(set(spec.options) - _OPTIONS) or sorted(set(spec.params) - _PARAMS)
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r} (options: {', '.join(sorted(_OPTIONS))}; "
                        f"params: {', '.join(sorted(_PARAMS))})")
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
    train, validation = load_training_splits(suite, ctx.spec.path)
    state_dir = Path(ctx.cache.root) / "openai-jobs"
    candidate = fine_tune(train, validation, settings, config=client_config_from_options(spec.options, where),
                          state_dir=state_dir, name=spec.name, pricing=pricing_from_spec(ctx.spec.pricing),
                          progress=ctx.log, request_options=spec.options.get("request_options"))
    ctx.count("openai_fine_tuned")
    return candidate
