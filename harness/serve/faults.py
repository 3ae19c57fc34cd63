"""Seeded fault injection: a share of requests answer 429 (with Retry-After), 500, or stall.

A *logical operation* is a method plus a path (``POST /v1/fine_tuning/jobs``). It is never
faulted more than ``max_consecutive`` times in a row, so a client with enough retries always
gets through. ``plan`` scripts the first requests of chosen operations exactly (tests use it
to stall one particular call); the seeded random share applies after a plan runs out. A stall sleeps past the client's timeout and then handles the request anyway,
like a server whose reply is lost: the side effect happens, the client never sees it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "500", "stall")


@dataclass(frozen=True)
class FaultConfig:
    """How often and how the server misbehaves on purpose."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500")
    seed: int = 0
    retry_after_s: float = 0.05
    stall_s: float = 2.0
    max_consecutive: int = 2
    exempt_paths: tuple[str, ...] = ("/health",)
    plan: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # "POST /v1/x": ("stall", "ok")

    def __post_init__(self) -> None:
        for operation, steps in self.plan.items():
            bad = [s for s in steps if s not in (*FAULT_KINDS, "ok")]
            if bad:
                raise ValueError(f"fault plan for {operation!r}: unknown step(s) {bad}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, got {self.rate}")
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {', '.join(FAULT_KINDS)}, got {list(self.kinds)}")
        if self.max_consecutive < 0:
            raise ValueError("max_consecutive must be >= 0")

    @classmethod
    def parse(cls, rate: float, kinds: str | Iterable[str], **options) -> FaultConfig:
        """From CLI values: ``--fault-rate 0.3 --fault-kinds 429,500,stall``."""
        if isinstance(kinds, str):
            kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        return cls(rate=rate, kinds=tuple(kinds), **options)


class FaultInjector:
    """Decides, reproducibly for a seed and request order, which requests to fault."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._streak: dict[str, int] = {}
        self._planned = {op: list(steps) for op, steps in config.plan.items()}
        self._lock = threading.Lock()
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)

    def decide(self, method: str, path: str) -> str | None:
        """The fault kind to inject for this request, or None to serve it normally."""
        if path in self.config.exempt_paths:
            return None
        operation = f"{method.upper()} {path}"
        with self._lock:
            planned = self._planned.get(operation)
            if planned:
                step = planned.pop(0)
                if step == "ok":
                    return None
                self.injected[step] += 1
                return step
            if self.config.rate <= 0:
                return None
            roll = self._rng.random()
            kind = self._rng.choice(self.config.kinds)
            streak = self._streak.get(operation, 0)
            if roll >= self.config.rate or streak >= self.config.max_consecutive:
                self._streak[operation] = 0
                return None
            self._streak[operation] = streak + 1
            self.injected[kind] += 1
            return kind
