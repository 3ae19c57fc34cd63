"""Cold vs warm ``pytest suites/``: the warm run must train and generate nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO
from harness.jsonio import strict_dumps


def _pytest(cache: Path, reports: Path) -> float:
    env = {**os.environ, "FT_HARNESS_CACHE": str(cache)}
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                    "--ft-reports-dir", str(reports), "--ft-baseline", str(REPO / "reports" / "baseline.json")],
                   cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def run() -> dict[str, float]:
    cache = Path(tempfile.mkdtemp(prefix="ft-bench-suites-cache-"))
    reports = Path(tempfile.mkdtemp(prefix="ft-bench-suites-reports-"))
    cold = _pytest(cache, reports)
    warm = _pytest(cache, reports)
    return {"cold_s": round(cold, 1), "warm_s": round(warm, 1), "warm_over_cold": round(warm / cold, 3)}


if __name__ == "__main__":

    print(strict_dumps(run(), indent=2))
