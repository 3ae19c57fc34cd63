"""``ft-harness serve``: an OpenAI-compatible server for a local base model and LoRA adapters."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.backends.hf.lora import lora_params
from harness.cli.arguments import non_negative_number, port, positive_int, positive_number, seed
from harness.errors import HarnessError
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig
from harness.serve.jobs import TrainingDefaults
from harness.serve.runtime import local_backend, run_forever
from harness.serve.store import Store


def _name_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path).expanduser()


def _upload_mb(text: str) -> float:
    value = positive_number(text)
    if value > MAX_UPLOAD_MB:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_UPLOAD_MB} (1 TiB), got {text}")
    return value


def _lora_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


#: the largest upload limit: beyond it ``--max-upload-mb`` no longer limits anything
MAX_UPLOAD_MB = 1024 * 1024


def _rate(text: str) -> float:
    value = non_negative_number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a rate between 0 and 1, got {text}")
    return value


def register(subparsers: Any) -> None:
    """Add ``serve`` to the top-level parser."""
    parser = subparsers.add_parser(
        "serve", help="serve local models over an OpenAI-compatible HTTP API",
        description="Serve a base model and LoRA adapters with OpenAI's chat, completions, models, "
                    "files and fine-tuning endpoints. Fine-tuning jobs train LoRA adapters locally; "
                    "a finished job's model is served at once.")
    parser.add_argument("--model", type=_name_path, required=True, metavar="NAME=PATH",
                        help="the base model: its id and local directory")
    parser.add_argument("--adapter", type=_name_path, action="append", default=[],
                        metavar="NAME=DIR", help="a LoRA adapter served as model NAME (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="port (0: pick a free one; default 8000)")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help="keep files, jobs and trained adapters here across restarts")
    parser.add_argument("--api-key-env", default=None, metavar="VAR",
                        help="require 'Authorization: Bearer <value of $VAR>' on every request")
    parser.add_argument("--max-upload-mb", type=_upload_mb, default=50.0, help="upload size limit (default 50)")
    parser.add_argument("--default-max-tokens", type=positive_int, default=64,
                        help="completion length when a request gives none (default 64)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="generation batch size (default 16)")
    parser.add_argument("--epochs", type=positive_int, default=3, help="n_epochs when a job says 'auto' (default 3)")
    parser.add_argument("--learning-rate", type=positive_number, default=2e-3,
                        help="LoRA learning rate at multiplier 1 (default 2e-3)")
    parser.add_argument("--lora", type=_lora_param, action="append", default=[], metavar="KEY=VALUE",
                        help="a LoRA training parameter for jobs, VALUE in JSON "
                             "(e.g. r=16, modules_to_save='[\"lm_head\"]'; repeatable)")
    faults = parser.add_argument_group("fault injection (for testing clients)")
    faults.add_argument("--fault-rate", type=_rate, default=0.0, help="share of requests to fault")
    faults.add_argument("--fault-kinds", default="429,500", help="among 429,500,stall (default 429,500)")
    faults.add_argument("--fault-seed", type=seed, default=0)
    faults.add_argument("--fault-stall-s", type=non_negative_number, default=30.0,
                        help="how long a stalled request hangs before it is handled (default 30)")
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load the model and serve until interrupted."""

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise HarnessError(f"--api-key-env {args.api_key_env}: that environment variable is empty")
    name, path = args.model
    if not (path / "config.json").exists():
        raise HarnessError(f"--model {name}={path}: not a saved model directory (no config.json)")
    for adapter_name, adapter_dir in args.adapter:
        if not (adapter_dir / "adapter_config.json").exists():
            raise HarnessError(f"--adapter {adapter_name}={adapter_dir}: no adapter_config.json there")
    try:
        fault_config = FaultConfig.parse(args.fault_rate, args.fault_kinds, seed=args.fault_seed,
                                         stall_s=args.fault_stall_s)
    except ValueError as exc:
        raise HarnessError(f"--fault-kinds / --fault-rate: {exc}") from None
    settings = ServerSettings(api_key=api_key, max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                              default_max_tokens=args.default_max_tokens, faults=fault_config)
    lora = {**TrainingDefaults().lora, **dict(args.lora)}
    try:

        lora_params({k: v for k, v in lora.items()})
    except HarnessError as exc:
        raise HarnessError(f"--lora: {exc}") from None
    training = TrainingDefaults(n_epochs=args.epochs, learning_rate=args.learning_rate, lora=lora)
    # Opened before the model loads: a damaged state directory fails at once (StateError, exit 3).
    store = Store(args.state_dir, persist=True) if args.state_dir is not None else None
    backend = local_backend((name, path), dict(args.adapter), batch_size=args.batch_size)

    def announce(url: str) -> None:
        print(f"ft-harness serve: listening on {url} (models: "
              f"{', '.join(m.id for m in backend.models())})", flush=True)

    try:
        run_forever(backend, host=args.host, port=args.port, state_dir=args.state_dir,
                    settings=settings, training=training, store=store, announce=announce)
    except OSError as exc:
        raise HarnessError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    print("ft-harness serve: stopped", file=sys.stderr)
    return 0
