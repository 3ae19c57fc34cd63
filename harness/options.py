"""The evaluation session's typed options (the ``--ft-*`` command line), checked when made."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cache import default_cache_root
from harness.errors import HarnessError
from harness.protocol import MAX_COUNT, MAX_REPEAT

DEFAULT_SPEC = "fixtures/candidates.toml"
DEFAULT_REPORTS = "reports"


class OptionError(HarnessError):
    """A session option has a value it cannot take; names the option and what was expected."""

    def __init__(self, option: str, expected: str, got: Any) -> None:
        self.option, self.expected, self.got = option, expected, got
        super().__init__(f"{option}: expected {expected}, got {got!r}")


def _is_uri(value: Any) -> bool:
    """A tracking URI names its scheme (``http://``, ``sqlite:///``, ``file:``, ``databricks``)."""
    from urllib.parse import urlsplit

    return isinstance(value, str) and (value == "databricks" or len(urlsplit(value).scheme) > 1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SessionOptions:
    """Everything a session is configured with (the ``--ft-*`` options), checked when made.

    Paths are used as given (callers resolve them against their root); ``root_dir`` is where
    the default cache folder goes when ``cache_dir`` is None.
    """

    spec_path: Path = Path(DEFAULT_SPEC)
    root_dir: Path = Path(".")
    base_model: str | None = None  # overrides the spec's base model
    cache_dir: Path | None = None  # default: $FT_HARNESS_CACHE or <root_dir>/.ft-cache
    no_cache: bool = False
    batch_size: int | None = None  # default: the spec's batch size
    repeat: int = 1
    reports_dir: Path = Path(DEFAULT_REPORTS)
    baseline_path: Path | None = None  # default: <reports_dir>/baseline.json
    update_baseline: bool = False
    force: bool = False
    strict: bool = False
    encoder_model: str | None = None
    openai_max_cost: float | None = None
    progress: bool = False
    resume: bool = True
    mlflow: str | None = None  # None: off; "": the local store in the reports folder; else a tracking URI
    mlflow_log_model: bool = False  # also log each trained adapter directory as an MLflow model

    def __post_init__(self) -> None:
        for name in ("spec_path", "root_dir", "reports_dir", "cache_dir", "baseline_path"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                if not isinstance(value, str) or not value:
                    raise OptionError(name, "a path", value)
                object.__setattr__(self, name, Path(value))
        for name in ("no_cache", "update_baseline", "force", "strict", "progress", "resume", "mlflow_log_model"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(name, "true or false", getattr(self, name))
        for name in ("base_model", "encoder_model"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise OptionError(name, "a non-empty model reference", value)
        for name, limit in (("batch_size", MAX_COUNT), ("repeat", MAX_REPEAT)):
            value = getattr(self, name)
            if value is None and name == "batch_size":
                continue
            if not _is_int(value) or value < 1:
                raise OptionError(name, "an integer of at least 1", value)
            if value > limit:
                raise OptionError(name, f"an integer of at most {limit:,}", value)
        if self.mlflow is not None and self.mlflow != "" and not _is_uri(self.mlflow):
            raise OptionError("mlflow", "a tracking URI with a scheme (http://127.0.0.1:5000, sqlite:///mlflow.db, "
                              "file:///path; write --ft-mlflow=URI) or nothing for the local store", self.mlflow)
        cost = self.openai_max_cost
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))
                                 or not math.isfinite(cost) or cost < 0):
            raise OptionError("openai_max_cost", "a finite number of US dollars, 0 or more", cost)

    @property
    def cache_root(self) -> Path:
        """The cache folder this session uses."""

        return self.cache_dir if self.cache_dir is not None else default_cache_root(self.root_dir)

    @property
    def baseline_file(self) -> Path:
        """The baseline file gated against (and written by ``update_baseline``)."""
        return self.baseline_path if self.baseline_path is not None else self.reports_dir / "baseline.json"
