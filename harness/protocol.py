"""What every candidate model offers the runner, whatever trained or serves it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.data.records import Message

# Bounds on the numbers a spec, a command line or a request may give. Beyond them a value is a typo,
# and a library would fail deep inside (an integer overflow, a MemoryError) or a run would not end.
MAX_SEED = 2**32 - 1  # numpy, torch and Python seeding take 32-bit seeds
MAX_NEW_TOKENS = 1_000_000  # no model's context comes near it
MAX_COUNT = 1_000_000  # batch sizes, token lengths, steps and other counts
#: evaluations of each candidate (``--ft-repeat``, a suite's ``repeats``)
MAX_REPEAT = 1_000
MAX_THREADS = 1024  # torch intra-op threads
MAX_EPOCHS = 10_000
MAX_TRIALS = 1_000  # hyperparameter-search trials (a grid's combinations)
MAX_PORT = 65535


@dataclass(frozen=True)
class DecodeParams:
    """Decoding settings; part of every generation cache key and model fingerprint."""

    max_new_tokens: int = 16
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, "stop": list(self.stop)}


@dataclass
class Generation:
    """One model output with the token counts needed for cost and latency reporting.

    ``latency_s`` is measured per request for endpoints; for batched local inference it is the
    batch's wall time divided by its size (``batch_latency_s`` and ``batch_size`` say which batch).
    """

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    batch_latency_s: float = 0.0  # wall time of the local batch this output came from (0: per request)
    batch_size: int = 1


@dataclass
class TrainingSummary:
    """What a training run did: shown in the report's training table and stored in results."""

    hyperparameters: dict[str, Any]
    runtime_s: float
    trainable_params: int
    total_params: int
    train_loss: float | None = None
    eval_loss: float | None = None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    rows_dropped: int = 0
    rows_truncated: int = 0
    notes: list[str] = field(default_factory=list)
    cost_usd: float | None = None  # one-off training cost where it is billed (OpenAI jobs)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@runtime_checkable
class Candidate(Protocol):
    """A model under evaluation, and every capability the runner, pricing, prompting and CLI use.

    ``fingerprint`` identifies the model by content (weights / adapter hashes, tokenizer,
    chat template, or remote model id): two different models never share one. Each capability
    below has a default meaning "not offered"; a kind inherits this class and overrides what it
    offers, so a type checker and ``tests/test_candidate_interface.py`` see every kind's answer.
    """

    name: str
    kind: str
    fingerprint: str
    training: TrainingSummary | None

    #: answers with one of the labels directly (a classifier head): scored without free text
    always_predicts_labels: ClassVar[bool] = False

    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """Generate one reply per chat prompt."""
        ...

    def token_counts(self, prompts: Sequence[list[Message]], replies: Sequence[str]) -> list[tuple[int, int]] | None:
        """``(prompt, completion)`` tokens of each label-scored reply, for cost reporting (None: cannot count)."""
        return None

    def prompt_lengths(self, prompts: Sequence[list[Message]]) -> list[int] | None:
        """Tokens of each chat prompt as the model's template renders it (None: no local tokenizer)."""
        return None

    def context_window(self) -> tuple[int | None, str]:
        """The model's context length in tokens and where it comes from (None: unknown)."""
        return None, "unknown"

    def priced_model(self) -> str | None:
        """The remote model id the report prices per token (None: not billed per token)."""
        return None

    def prompt_details(self) -> dict[str, Any] | None:
        """A prompted candidate's instruction and shots, recorded with its results (None: not prompted)."""
        return None

    def engine_details(self) -> dict[str, Any] | None:
        """Which engine produced the outputs when not the default one (None: the default)."""
        return None

    def saved_dirs(self) -> tuple[Path | None, Path | None]:
        """``(model_dir, adapter_dir)`` of a locally saved model (None where there is none)."""
        return None, None

    def release(self) -> None:
        """Free what evaluating held (loaded weights, a connection); the next call reloads it."""
        return None


@runtime_checkable
class LabelScorer(Protocol):
    """Optional capability: pick one of a fixed label set per prompt without free text."""

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """Return the most likely label for each prompt."""
        ...


@runtime_checkable
class TextScorer(Protocol):
    """Optional capability: the log-likelihood of plain text documents (collateral forgetting checks)."""

    def text_log_likelihoods(self, texts: Sequence[str]) -> list[tuple[float, int]]:
        """Per document: summed natural-log probability of its tokens and how many tokens were scored."""
        ...


@runtime_checkable
class LabelProbabilities(Protocol):
    """Optional capability: a probability for each label per prompt (collateral calibration checks)."""

    def label_probabilities(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[list[float]]:
        """One row per prompt: the probability of each label (in ``labels`` order), summing to 1."""
        ...
