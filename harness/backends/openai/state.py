"""What identifies one OpenAI fine-tune and what is remembered about it between runs.

The state key hashes the training and validation content, the hyperparameters and the base
model (never the API key); the state file records the file ids, job id and model the moment
each exists, so a rerun re-attaches to the job instead of paying for another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.cache import cache_key
from harness.data.records import Split
from harness.errors import TrainingError
from harness.jsonio import strict_dumps, write_atomic

METADATA_KEY = "ft_harness_key"
TERMINAL = ("succeeded", "failed", "cancelled")
STATE_VERSION = 1
Auto = str  # the literal "auto"


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
    lines = [strict_dumps({"messages": [{"role": m["role"], "content": m["content"]} for m in ex.messages]},
                        ensure_ascii=False, sort_keys=True) for ex in split.examples]
    return ("\n".join(lines) + "\n").encode("utf-8")


def sha256_hex(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def job_key(train_bytes: bytes, validation_bytes: bytes | None, settings: FineTuneSettings) -> str:
    """The state key: training + validation content, hyperparameters, base model, suffix, seed."""

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


@dataclass
class JobState:
    """What is persisted about one fine-tune (no credentials: the URL is credential-free)."""

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
        write_atomic(path, strict_dumps(asdict(self), indent=1, sort_keys=True))
