"""``python -m bench [NAME ...]``: run the benchmarks and print one JSON object of their results.

Each benchmark module exposes ``run() -> dict``; ratios are measured side by side in one run on
this machine, never compared with numbers from elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import platform
import sys
import time

from harness.jsonio import strict_dumps

BENCHMARKS = {
    "generation": "bench.generation",   # batched vs per-example generation; label scoring vs generation;
                                        # shared-prefix cache on a 5-shot suite; batched rendering
    "metrics": "bench.metrics",         # ROUGE / BLEU over 10,000 pairs vs the per-example loop
    "training": "bench.training",       # harness LoRA vs TRL SFTTrainer called directly
    "suites": "bench.suites",           # warm vs cold `pytest suites/`
    "serve_load": "bench.serve_load",   # `ft-harness serve` on 127.0.0.1: req/s, p50 / p99, /health p99
    "engines": "bench.engines",         # sharded evaluation 2 processes vs 1; vLLM vs transformers (FT_VLLM)
    "peers": "bench.peers",             # beside lm-evaluation-harness (`bench` extra): likelihood, greedy
    "stats": "bench.stats",             # compare() at 100 k pairs vs the bootstrap; gate + reports, 10 k x 5
    "interrupts": "bench.interrupts",   # Ctrl-C at random points of a baseline update: exit s, fast exit vs
                                        # full teardown
}


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import os

    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    results: dict[str, object] = {}
    for name in names:
        began = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):  # trainers print their logs; stdout is the JSON
            results[name] = importlib.import_module(BENCHMARKS[name]).run()
        print(f"[bench] {name} done in {time.perf_counter() - began:.1f}s", file=sys.stderr, flush=True)
    results["machine"] = machine()  # after the runs: the thread count they actually used
    print(strict_dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
