"""Batched greedy generation for local causal LMs: left padding, length sorting, KV cache.

Prompts are sorted by length so each batch pads little; outputs are returned in the caller's
order. On CUDA an out-of-memory error halves the batch and retries, down to one prompt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.data.records import Message
from harness.protocol import DecodeParams, Generation
from harness.text import cut_at_stop

OOM_REMEDIES = (
    "try a smaller --ft-batch-size, gradient accumulation, 8-bit/4-bit base loading, "
    "or LoRA instead of full fine-tuning"
)


def pick_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(model_dir: str | Path, adapter_dir: str | Path | None = None, *,
               device: str | None = None, torch_dtype: str | None = None):
    """Load a causal LM (optionally with a LoRA adapter) and its tokenizer for inference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or pick_device()
    tokenizer_source = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = getattr(torch, torch_dtype) if torch_dtype else (torch.float16 if device == "cuda" else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    return model, tokenizer


def render_prompts(tokenizer, prompts: Sequence[list[Message]]) -> list[list[int]]:
    """Token ids of each chat prompt with the generation prompt appended."""
    rendered = []
    for messages in prompts:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                            return_dict=True)["input_ids"]
        rendered.append(list(ids))
    return rendered


def _run_batch(model, tokenizer, batch: list[list[int]], params: DecodeParams) -> list[tuple[list[int], int]]:
    import torch

    pad_id = tokenizer.pad_token_id
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids):] = 1
    device = model.device
    sampling = params.temperature > 0
    kwargs = {"do_sample": sampling}
    if sampling:
        torch.manual_seed(params.seed)
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=params.max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=pad_id,
            use_cache=True,
            **kwargs,
        )
    results = []
    for row in out[:, width:].tolist():
        completion = []
        for token in row:
            if token == tokenizer.eos_token_id:
                completion.append(token)
                break
            if token == pad_id:
                break
            completion.append(token)
        results.append((completion, len(completion)))
    return results


def generate_batch(model, tokenizer, prompts: Sequence[list[Message]], params: DecodeParams, *,
                   batch_size: int = 32, progress: Callable[[int], None] | None = None) -> list[Generation]:
    """Generate one reply per prompt, batched by similar length; outputs in input order."""
    encoded = render_prompts(tokenizer, prompts)
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    outputs: list[Generation | None] = [None] * len(encoded)
    start = 0
    size = max(1, batch_size)
    while start < len(order):
        indices = order[start:start + size]
        began = time.perf_counter()
        try:
            results = _run_batch(model, tokenizer, [encoded[i] for i in indices], params)
        except Exception as exc:  # CUDA OOM: halve and retry
            if not _is_oom(exc) or size == 1:
                if _is_oom(exc):
                    raise MemoryError(f"out of memory during generation at batch size 1; {OOM_REMEDIES}") from exc
                raise
            _free_cuda()
            size = max(1, size // 2)
            continue
        elapsed = (time.perf_counter() - began) / len(indices)
        for i, (tokens, n_completion) in zip(indices, results, strict=True):
            text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
            outputs[i] = Generation(
                text=cut_at_stop(text, params.stop).strip(),
                prompt_tokens=len(encoded[i]),
                completion_tokens=n_completion,
                latency_s=elapsed,
            )
        start += len(indices)
        if progress:
            progress(len(indices))
    return [g for g in outputs if g is not None]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
