"""Which vLLM server serves a local candidate, and under which model name.

A base model and every LoRA adapter over it share one started server (``--enable-lora
--lora-modules name=dir --max-lora-rank R``; adapters met after it started are loaded at run time
through ``/v1/load_lora_adapter``). An adapter that also trains other modules (``modules_to_save``
such as ``lm_head``, which vLLM refuses) is merged into its base (PEFT ``merge_and_unload``) and
the merged model is served alone, as is a full fine-tune. One started server runs at a time:
starting another stops it. With ``base_url`` nothing is started: the candidate is served there
under ``model`` (default: its name).
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.vllm.server import VLLMServer, VLLMStartError
from harness.backends.vllm.settings import VLLMSettings
from harness.errors import SpecError

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the ranks vLLM's --max-lora-rank accepts
BASE_NAME = "ft-base"


@dataclass(frozen=True)
class Served:
    """Where a candidate is served: the API's base URL and the model name to request."""

    base_url: str
    model: str
    started: bool
    lora: bool = False  # the server has LoRA enabled (or, connected, may have)


def _name(candidate_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", candidate_name) or "adapter"


def adapter_config(adapter_dir: Path) -> dict[str, Any]:
    """The adapter's ``adapter_config.json``."""
    return json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))


def needs_merge(adapter_dir: Path) -> bool:
    """Whether vLLM cannot load the adapter as LoRA (it also saves whole modules, e.g. ``lm_head``)."""
    return bool(adapter_config(adapter_dir).get("modules_to_save"))


def lora_rank(r: int) -> int:
    """The smallest rank vLLM accepts for ``--max-lora-rank`` that fits ``r``."""
    for rank in LORA_RANKS:
        if r <= rank:
            return rank
    raise SpecError(f"LoRA rank {r} is above the largest vLLM serves ({LORA_RANKS[-1]})")


def merged_model(adapter_dir: Path, model_dir: Path, out: Path) -> Path:
    """``out``: the base with the adapter merged in (``merge_and_unload``) and the tokenizer, saved once."""
    if (out / "config.json").exists():
        return out
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(tmp))
    has_tokenizer = (Path(adapter_dir) / "tokenizer_config.json").exists()
    AutoTokenizer.from_pretrained(str(adapter_dir if has_tokenizer else model_dir)).save_pretrained(str(tmp))
    tmp.rename(out)
    return out


def _max_position_embeddings(model_dir: Path) -> int | None:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings")
    return int(value) if isinstance(value, int) else None


class ServerPool:
    """The servers this process started, by (model directory, server arguments)."""

    def __init__(self) -> None:
        self.current: tuple[tuple[str, tuple[str, ...]], VLLMServer] | None = None
        self.adapters: set[str] = set()

    def serve(self, model_dir: Path, settings: VLLMSettings, *, adapters: dict[str, Path] | None = None,
              max_lora_rank: int | None = None, log_dir: Path | None = None) -> VLLMServer:
        """The running server for ``model_dir`` (started, or reused), with ``adapters`` loaded."""
        adapters = dict(adapters or {})
        args = settings.server_args()
        if settings.max_model_len is None:
            length = _max_position_embeddings(model_dir)
            args = (*args, "--max-model-len", str(length)) if length else args
        args = (*args, "--served-model-name", BASE_NAME)
        if max_lora_rank:
            args = (*args, "--enable-lora", "--max-lora-rank", str(lora_rank(max_lora_rank)))
        key = (str(Path(model_dir).resolve()), args)
        if self.current is not None and self.current[0] == key and self.current[1].running:
            server = self.current[1]
            for name, path in adapters.items():
                if name not in self.adapters:
                    self._load_adapter(server, name, path)
            return server
        self.stop()
        lora = [f"{name}={path}" for name, path in adapters.items()]
        server = VLLMServer(str(model_dir), (*args, *(["--lora-modules", *lora] if lora else [])),
                            executable=settings.executable, port=settings.port,
                            startup_timeout_s=settings.startup_timeout_s,
                            log_path=(log_dir / f"vllm-{_name(Path(model_dir).name)}.log") if log_dir else None,
                            env={"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", **settings.env})
        server.start()
        self.current, self.adapters = (key, server), set(adapters)
        return server

    def _load_adapter(self, server: VLLMServer, name: str, path: Path) -> None:
        body = json.dumps({"lora_name": name, "lora_path": str(path)}).encode()
        request = urllib.request.Request(f"http://{server.host}:{server.port}/v1/load_lora_adapter", body,
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                reply.read()
        except Exception as exc:
            detail = getattr(exc, "read", lambda: b"")().decode("utf-8", "replace")[:300]
            raise VLLMStartError(f"vLLM server {server.base_url} did not load adapter {name} from {path}: "
                                 f"{exc} {detail}".strip()) from None
        self.adapters.add(name)

    def stop(self) -> None:
        """Stop the started server, if any."""
        if self.current is not None:
            self.current[1].stop()
        self.current, self.adapters = None, set()


POOL = ServerPool()


def suite_lora_rank(suite: Any, adapter_dir: Path | None) -> int:
    """The largest LoRA rank among the suite's vLLM-served adapters (their ``r``, default 8)."""
    ranks = [int(adapter_config(adapter_dir).get("r", 8))] if adapter_dir else [8]
    for spec in getattr(suite, "candidates", {}).values():
        if spec.kind == "lora" and spec.options.get("engine") == "vllm":
            ranks.append(int(spec.params.get("r", 8)))
    return max(ranks)
