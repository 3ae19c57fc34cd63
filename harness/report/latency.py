"""Latency as what it is: per request for endpoints; for batched local inference, each example's
share of its batch's wall time, shown beside the batch times themselves (run info only: it varies
from run to run)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.fmt import fmt_float


def latency_text(usage: Mapping[str, float]) -> str:
    """One run-info phrase for a result's ``usage`` ("" when it recorded no latency)."""
    if not usage.get("requests") or not usage.get("latency_mean_s"):
        return ""
    p50, p95 = fmt_float(usage.get("latency_p50_s", 0.0), 4), fmt_float(usage.get("latency_p95_s", 0.0), 4)
    if "batch_latency_mean_s" not in usage:
        return f"latency per request p50 {p50}s, p95 {p95}s"
    return (f"latency per-example share of batch time p50 {p50}s, p95 {p95}s; "
            f"batch time mean {fmt_float(usage['batch_latency_mean_s'], 4)}s, "
            f"max {fmt_float(usage.get('batch_latency_max_s', 0.0), 4)}s, "
            f"batch size mean {fmt_float(usage.get('batch_size_mean', 0.0), 3)}")
