"""The fine-tuning playbook on real tiny runs: options reach PEFT / TRL / transformers, early
stopping and the overfitting warning, grid search with cached trials, failure messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import SpecError, TrainingError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def write_project(root: Path, candidates: str, *, data: str = "sentiment", n_train: int = 16,
                  n_validation: int = 8, extra: str = "") -> Path:
    """A spec with one suite ``play`` over small slices of a fixture dataset, plus ``candidates``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_validation), ("eval", 8)):
        lines = (FIXTURES / data / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = ('task = "classification"\nlabels = ["positive", "negative"]\nscoring = "likelihood"'
            if data == "sentiment" else 'task = "generation"\nmetrics = ["rougeL"]')
    spec = (f'[harness]\nseed = 0\n\n[suites.play]\n{task}\ntrain = "train.jsonl"\n'
            f'validation = "validation.jsonl"\neval = "eval.jsonl"\n{extra}\n{candidates}')
    (root / "spec.toml").write_text(spec, encoding="utf-8")
    return root / "spec.toml"


def context(spec_path: Path, base_dir: Path, cache_dir: Path, messages: list[str] | None = None):
    """A build context as the pytest plugin makes one, on ``base_dir`` and a private cache."""
    from harness.cache import CacheStore
    from harness.context import BuildContext, BuildOptions
    from harness.spec import load_spec

    sink = messages if messages is not None else []
    return BuildContext(spec=load_spec(spec_path), cache=CacheStore(cache_dir), base_model=str(base_dir),
                        options=BuildOptions(cache_root=cache_dir), log=sink.append)


def build(ctx, name: str):
    from harness.kinds import build_candidate

    suite = ctx.spec.suite("play")
    return build_candidate(ctx, suite, suite.candidate(name))


# -- options reach the libraries ----------------------------------------------------------------

@pytest.mark.slow
def test_lora_options_reach_peft_and_trl_and_early_stopping_stops(tiny_base, sentiment_train, tmp_path):
    from dataclasses import replace

    from peft import PeftModel
    from transformers import EarlyStoppingCallback

    from harness.backends.hf.lora import fit_lora, prepare_lora_trainer

    train = replace(sentiment_train, examples=sentiment_train.examples[:16])
    validation = replace(sentiment_train, name="validation", examples=sentiment_train.examples[16:20])
    params = {"r": 4, "alpha": 12, "dropout": 0.1, "target_modules": ["q_proj", "v_proj"],
              "modules_to_save": ["lm_head"], "bias": "lora_only", "batch_size": 4,
              "gradient_accumulation_steps": 2, "gradient_checkpointing": True, "weight_decay": 0.01,
              "warmup_steps": 1, "lr_scheduler_type": "cosine", "n_epochs": 3, "eval_steps": 1,
              "save_total_limit": 1, "early_stopping_patience": 1, "early_stopping_threshold": 10.0}
    trainer, _, _, _ = prepare_lora_trainer(tiny_base, train, validation, params, tmp_path / "ckpt")
    model = trainer.model
    assert isinstance(model, PeftModel)
    config = model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout, config.bias) == (4, 12, 0.1, "lora_only")
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in model.named_parameters() if "lora_A" in name}
    assert adapted == {"q_proj", "v_proj"}
    assert type(model.base_model.model.lm_head).__name__ == "ModulesToSaveWrapper"
    assert model.base_model.model.model.layers[0].self_attn.q_proj.lora_dropout["default"].p == 0.1
    args = trainer.args
    assert (args.gradient_accumulation_steps, args.gradient_checkpointing, args.weight_decay) == (2, True, 0.01)
    assert (args.warmup_steps, str(args.lr_scheduler_type.value), args.eval_steps) == (1, "cosine", 1)
    assert (args.save_total_limit, args.load_best_model_at_end, args.metric_for_best_model) == (1, True, "eval_loss")
    assert args.assistant_only_loss and not args.bf16 and not args.fp16
    stopper = [c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
    assert stopper and stopper[0].early_stopping_patience == 1

    # a real run with the same options: accumulation halves the optimizer steps and early
    # stopping ends it after the second evaluation (no improvement larger than the threshold)
    trained, _, summary = fit_lora(tiny_base, train, validation, params, tmp_path / "run", seed=0)
    assert trained.base_model.model.is_gradient_checkpointing
    steps_per_epoch = 16 // (4 * 2)
    assert summary.early_stopped
    evals = [e for e in summary.log_history if "eval_loss" in e]
    assert [e["step"] for e in evals[:2]] == [1, 2] and evals[-2]["step"] == 2
    assert max(e["step"] for e in summary.log_history) == 2 < steps_per_epoch * 3
    assert any("early stopping" in note for note in summary.notes)


def test_full_options_reach_training_arguments(tiny_base, sentiment_train, tmp_path):
    from dataclasses import replace

    from harness.backends.hf.full import prepare_full_trainer

    train = replace(sentiment_train, examples=sentiment_train.examples[:8])
    params = {"weight_decay": 0.05, "warmup_steps": 0.1, "lr_scheduler_type": "cosine_with_restarts",
              "eval_steps": 3, "save_steps": 6, "save_total_limit": 4, "learning_rate": 5e-4}
    trainer, _, p, _ = prepare_full_trainer(tiny_base, train, train, params, tmp_path / "ckpt")
    args = trainer.args
    assert (args.weight_decay, args.warmup_steps, args.learning_rate) == (0.05, 0.1, 5e-4)
    assert args.lr_scheduler_type.value == "cosine_with_restarts"
    assert (args.eval_strategy.value, args.eval_steps, args.save_strategy.value, args.save_steps) == \
           ("steps", 3, "steps", 6)
    assert (args.save_total_limit, args.load_best_model_at_end, args.greater_is_better) == (4, True, False)
    assert p["load_best_model_at_end"] is True


@pytest.mark.parametrize(("params", "message"), [
    ("rank = 8", "params.rank: unknown key"),
    ('bias = "some"', "params.bias: expected one of none, all, lora_only, got 'some'"),
    ("load_in_8bit = true, load_in_4bit = true", "params.load_in_4bit: 'load_in_8bit' and 'load_in_4bit' exclude"),
    ("batch_size = 0", "params.batch_size: expected a positive integer, got 0"),
    ("target_modules = []", "params.target_modules: expected"),
    ("alpha = 0", "params.alpha: expected a positive number, got 0"),
    ('alpha = "16"', "params.alpha: expected a positive number, got '16'"),
    ("learning_rate = -0.001", "params.learning_rate: expected a positive number, got -0.001"),
    ("gradient_checkpointing = 1", "params.gradient_checkpointing: expected true or false, got 1"),
    ("eval_steps = 4, save_steps = 6, load_best_model_at_end = true",
     "params.save_steps: 6 must be a multiple of 'eval_steps'"),
])
def test_bad_training_parameters_name_the_candidate(tiny_base, tmp_path, params, message):
    spec = write_project(tmp_path, f'[suites.play.candidates.bad]\nkind = "lora"\nparams = {{ {params} }}\n')
    messages: list[str] = []
    with pytest.raises(SpecError, match=r"spec\.toml: suites\.play\.candidates\.bad\.params") as raised:
        build(context(spec, tiny_base, tmp_path / "cache", messages), "bad")  # at load or at plan time
    assert message in str(raised.value)
    assert not any(m.startswith("training") for m in messages)


def test_precision_the_hardware_lacks_is_refused_clearly(tiny_base, tmp_path, monkeypatch):
    import torch

    from harness.training.hardware import mixed_precision_flags

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = write_project(tmp_path, '[suites.play.candidates.half]\nkind = "full"\nparams = { precision = "bf16" }\n')
    ctx = context(spec, tiny_base, tmp_path / "cache")
    with pytest.raises(SpecError) as raised:
        build(ctx, "half")
    text = str(raised.value)
    assert "suites.play.candidates.half" in text and "bf16" in text and "no GPU" in text
    assert mixed_precision_flags("auto") == {"bf16": False, "fp16": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert mixed_precision_flags("auto") == {"bf16": False, "fp16": True}
    with pytest.raises(SpecError, match="bfloat16 support"):
        mixed_precision_flags("bf16")


# -- failures become TrainingError ---------------------------------------------------------------

@pytest.mark.parametrize(("kind", "remedy"), [
    ("full", 'kind = "lora"'),
    ("lora", "load_in_8bit = true or load_in_4bit = true"),
])
def test_out_of_memory_during_training_names_the_remedies(tiny_base, tmp_path, monkeypatch, kind, remedy):
    import torch
    import transformers

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(transformers.Trainer, "train", out_of_memory)
    spec = write_project(tmp_path, f'[suites.play.candidates.big]\nkind = "{kind}"\n'
                                   'params = { batch_size = 8, gradient_accumulation_steps = 2 }\n')
    ctx = context(spec, tiny_base, tmp_path / "cache")
    with pytest.raises(TrainingError) as raised:
        build(ctx, "big")
    text = str(raised.value)
    assert "suites.play.candidates.big" in text and "out of accelerator memory" in text
    assert "batch_size = 4, gradient_accumulation_steps = 4" in text
    assert "gradient_checkpointing = true" in text and remedy in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_any_training_crash_becomes_a_training_error_with_the_traceback_kept(tiny_base, tmp_path, monkeypatch):
    import transformers

    def crash(self, *args, **kwargs):
        raise RuntimeError("shape mismatch in the backward pass")

    monkeypatch.setattr(transformers.Trainer, "train", crash)
    spec = write_project(tmp_path, '[suites.play.candidates.crashy]\nkind = "full"\n')
    ctx = context(spec, tiny_base, tmp_path / "cache")
    with pytest.raises(TrainingError, match=r"suites\.play\.candidates\.crashy: training failed "
                                            r"\(RuntimeError: shape mismatch in the backward pass\)") as raised:
        build(ctx, "crashy")
    traceback_file = Path(str(raised.value).split("full traceback: ")[1].rstrip("]"))
    assert "shape mismatch" in traceback_file.read_text(encoding="utf-8")
    assert not list((tmp_path / "cache" / "artifacts").iterdir())  # nothing half-stored


# -- acceptance: overfitting warning, best checkpoint, early stopping (full fine-tuning) ------------

@pytest.mark.slow
def test_an_overfitting_run_says_so_and_keeps_the_best_checkpoint(tiny_base, tmp_path):
    from harness.training.overfitting import loss_curves

    spec = write_project(tmp_path, '[suites.play.candidates.memorise]\nkind = "full"\n'
                         'params = { n_epochs = 16, batch_size = 8, learning_rate = 4e-3, '
                         'lr_scheduler_type = "constant", logging_steps = 1 }\n',
                         data="generation", n_train=2, n_validation=4)
    messages: list[str] = []
    ctx = context(spec, tiny_base, tmp_path / "cache", messages)
    summary = build(ctx, "memorise").training
    assert summary.log_history[-1]["final_evaluation"]  # the model kept, evaluated after training
    train_curve, eval_curve = loss_curves(e for e in summary.log_history if not e.get("final_evaluation"))
    best = min(eval_curve, key=lambda p: p.loss)
    assert len(eval_curve) == 16 and eval_curve[-1].loss > best.loss * 1.01, "the run did not overfit"

    assert summary.overfitting is not None
    assert summary.overfitting["turned_at_epoch"] == best.epoch
    assert summary.overfitting["final_eval_loss"] == eval_curve[-1].loss
    assert train_curve[-1].loss < summary.overfitting["train_loss_at_turn"]
    assert any(note.startswith("overfitting: validation loss rose") and f"turned at epoch {best.epoch:.3g}" in note
               for note in summary.notes)
    assert any("overfitting" in m for m in messages)  # said in the log as well
    # the model kept is the best checkpoint by validation loss, not the last one
    assert summary.best_step == best.step
    assert summary.eval_loss == pytest.approx(best.loss, abs=1e-5)
    assert summary.log_history[-1]["eval_loss"] == summary.eval_loss

    # the summary survives the cache: a second session gets it back without training
    again = context(spec, tiny_base, tmp_path / "cache")
    cached = build(again, "memorise").training
    assert again.events.get("trained", 0) == 0
    assert cached.as_dict() == summary.as_dict()


@pytest.mark.slow
def test_early_stopping_ends_a_full_fine_tune_at_the_patience(tiny_base, tmp_path):
    spec = write_project(tmp_path, '[suites.play.candidates.patient]\nkind = "full"\n'
                         'params = { n_epochs = 6, batch_size = 8, logging_steps = 1, '
                         'early_stopping_patience = 1, early_stopping_threshold = 10.0 }\n',
                         data="generation", n_train=2, n_validation=2)
    summary = build(context(spec, tiny_base, tmp_path / "cache"), "patient").training
    evals = [(e["step"], e["eval_loss"]) for e in summary.log_history if "eval_loss" in e]
    # the first evaluation sets the best; the second improves by less than the threshold: stop
    assert [step for step, _ in evals[:2]] == [1, 2] and max(e["step"] for e in summary.log_history) == 2
    assert summary.early_stopped
    assert summary.best_step == min(evals[:2], key=lambda e: e[1])[0]
    assert any(note.startswith("early stopping") for note in summary.notes)


# -- acceptance: grid search ---------------------------------------------------------------------

SEARCH_SPEC = """
[suites.play.candidates.plain]
kind = "lora"
params = { n_epochs = 1, batch_size = 8, alpha = 8, r = 4, learning_rate = 1e-3 }

[suites.play.candidates.sweep]
kind = "search"
base_kind = "lora"
params = { n_epochs = 1, batch_size = 8, alpha = 8 }
grid = { learning_rate = [1e-3, 3e-3], r = [4, 8] }

[suites.play.candidates.sweep_by_accuracy]
kind = "search"
base_kind = "lora"
params = { n_epochs = 1, batch_size = 8, alpha = 8 }
grid = { learning_rate = [1e-3, 3e-3], r = [4, 8] }
select = "accuracy"
"""


@pytest.mark.slow
def test_grid_search_tables_trials_picks_the_best_and_retrains_nothing_the_second_time(tiny_base, tmp_path):
    from harness.data import load_split
    from harness.runner.evaluate import evaluate_candidate

    spec = write_project(tmp_path, SEARCH_SPEC, n_train=8)  # one optimizer step per trial
    first = context(spec, tiny_base, tmp_path / "cache")
    plain = build(first, "plain")
    assert first.events["trained"] == 1
    sweep = build(first, "sweep")
    assert first.events["trained"] == 4  # 2 x 2 trials, one of them equal to `plain` (a cache hit)

    search = sweep.training.search
    rows = search["trials"]
    assert [(r["params"]["learning_rate"], r["params"]["r"]) for r in rows] == \
           [(1e-3, 4), (1e-3, 8), (3e-3, 4), (3e-3, 8)]
    assert [r["cache"] for r in rows] == ["hit", "miss", "miss", "miss"]
    assert rows[0]["fingerprint"] == plain.fingerprint
    best = min(range(4), key=lambda i: rows[i]["eval_loss"])
    assert search["best_trial"] == best and rows[best]["best"] and sum(r["best"] for r in rows) == 1
    assert search["best_params"] == rows[best]["params"]
    assert (search["select"], search["mode"], search["strategy"], search["base_kind"]) == \
           ("eval_loss", "min", "grid", "lora")
    assert sweep.fingerprint == rows[best]["fingerprint"] and sweep.kind == "search"
    assert sweep.training.eval_loss == rows[best]["eval_loss"]
    assert sweep.training.hyperparameters["learning_rate"] == rows[best]["params"]["learning_rate"]
    assert any(note.startswith("search: best of 4 grid trials") for note in sweep.training.notes)
    json.dumps(sweep.training.as_dict())  # the report stores it as JSON

    # a second session retrains nothing: every trial is a cache hit
    second = context(spec, tiny_base, tmp_path / "cache")
    again = build(second, "sweep")
    assert second.events.get("trained", 0) == 0
    assert second.cache.stats()["adapter"] == {"hits": 4, "misses": 0, "rebuilt_corrupt": 0}
    assert again.fingerprint == sweep.fingerprint

    # selecting by a metric evaluates the (cached) trials on the validation split
    by_accuracy = build(second, "sweep_by_accuracy")
    assert second.events.get("trained", 0) == 0
    validation = load_split(tmp_path / "validation.jsonl", name="validation")
    trial_rows = by_accuracy.training.search["trials"]
    suite = second.spec.suite("play")
    accuracies = [row["score"] for row in trial_rows]
    assert by_accuracy.training.search["mode"] == "max"
    assert by_accuracy.training.search["best_trial"] == accuracies.index(max(accuracies))
    chosen = evaluate_candidate(second, by_accuracy, suite, validation)
    assert chosen.metrics["accuracy"] == max(accuracies)
