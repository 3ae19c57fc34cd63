"""The OpenAI fine-tuning candidate against the real server (scripted model, instant trainer).

Covers the paths that must never cost a second job: re-attaching from the state file, a
lost upload or create reply, a run that died before saving the job id, plus the cost guard,
failed / cancelled jobs and secrets. The real-model end to end runs are in
test_serve_local.py.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest

from harness.backends.http import ClientConfig, RetryPolicy
from harness.backends.openai.candidates import build_openai as build
from harness.backends.openai.costguard import CostLimitError
from harness.backends.openai.finetune import fine_tune
from harness.backends.openai.state import FineTuneSettings, job_key
from harness.context import BuildOptions
from harness.cost import ModelPrice, PricingTable
from harness.data.records import Example, Split
from harness.errors import SpecError, TrainingError
from harness.protocol import Candidate, DecodeParams
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig
from harness.serve.jobs import TrainingDefaults
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend, instant_trainer
from harness.spec import CandidateSpec, HarnessSpec, SuiteSpec

FAST = RetryPolicy(max_attempts=6, initial_backoff_s=0.01, max_backoff_s=0.02)
SETTINGS = FineTuneSettings("base", n_epochs=2, batch_size=2, poll_interval_s=0.02)


def make_split(n: int = 6, name: str = "train") -> Split:
    examples = [Example(f"{name}-{i}", [{"role": "user", "content": f"{name} question {i}"},
                                        {"role": "assistant", "content": f"answer {i}"}])
                for i in range(n)]
    return Split(name, f"{name}.jsonl", examples, f"fp-{name}-{n}")


def config_for(server, **options) -> ClientConfig:
    return ClientConfig(base_url=server.base_url, api_key=options.pop("api_key", "local-key"),
                        retry=options.pop("retry", FAST), **options)


def sdk(server, key: str = "local-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=3)


@pytest.fixture
def server():
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer()) as running:
        yield running


def test_fine_tune_uploads_trains_reports_and_scores(server, tmp_path):
    lines: list[str] = []
    candidate = fine_tune(make_split(), make_split(3, "valid"), SETTINGS, config=config_for(server),
                          state_dir=tmp_path, name="ft", progress=lines.append)
    assert isinstance(candidate, Candidate) and candidate.kind == "openai"
    job = sdk(server).fine_tuning.jobs.retrieve(candidate.job_id)
    assert candidate.model == job.fine_tuned_model and job.status == "succeeded"
    assert job.hyperparameters.n_epochs == 2 and job.validation_file is not None
    assert any("Fine-tuning job started" in line for line in lines)
    assert any("Step 6/6" in line for line in lines)
    summary = candidate.training
    assert summary.train_loss == pytest.approx(2.0 / 6) and summary.eval_loss == pytest.approx(2.5 / 6)
    assert [h["step"] for h in summary.log_history] == [1, 2, 3, 4, 5, 6]
    assert summary.hyperparameters["n_epochs"] == 2 and summary.hyperparameters["base_model"] == "base"
    outputs = candidate.generate([[{"role": "user", "content": "hi there"}]] * 3, DecodeParams())
    assert [o.text for o in outputs] == [f"{candidate.model}: hi there"] * 3
    assert all(o.prompt_tokens == 3 and o.completion_tokens == 3 for o in outputs)
    state = json.loads(next(tmp_path.glob("openai-ft-*.json")).read_text())
    assert state["job_id"] == candidate.job_id and state["status"] == "succeeded"


def test_fingerprint_is_base_url_model_and_request_options_not_key(server, tmp_path):
    a = fine_tune(make_split(), None, SETTINGS, config=config_for(server, api_key="key-one"),
                  state_dir=tmp_path, progress=lambda s: None)
    b = fine_tune(make_split(), None, SETTINGS, config=config_for(server, api_key="key-two"),
                  state_dir=tmp_path, progress=lambda s: None)
    assert (a.job_id, a.fingerprint) == (b.job_id, b.fingerprint)
    c = fine_tune(make_split(), None, SETTINGS, config=config_for(server), state_dir=tmp_path,
                  progress=lambda s: None, request_options={"top_k": 5})
    assert c.fingerprint != a.fingerprint
    d = fine_tune(make_split(5), None, SETTINGS, config=config_for(server), state_dir=tmp_path,
                  progress=lambda s: None)
    assert d.model != a.model and d.fingerprint != a.fingerprint


def test_a_second_run_reattaches_and_reuses_the_upload(server, tmp_path):
    first = fine_tune(make_split(), None, SETTINGS, config=config_for(server), state_dir=tmp_path,
                      progress=lambda s: None)
    lines: list[str] = []
    again = fine_tune(make_split(), None, SETTINGS, config=config_for(server), state_dir=tmp_path,
                      progress=lines.append)
    assert again.job_id == first.job_id and again.model == first.model
    assert any("re-attaching" in line for line in lines)
    client = sdk(server)
    assert len(list(client.fine_tuning.jobs.list())) == 1
    assert len(list(client.files.list(purpose="fine-tune"))) == 1


def test_lost_replies_and_a_lost_state_file_never_create_a_second_job(tmp_path):
    plan = {"POST /v1/files": ("stall",), "POST /v1/fine_tuning/jobs": ("stall",)}
    settings = ServerSettings(faults=FaultConfig(plan=plan, stall_s=0.5))
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(),
                         settings=settings) as server:
        config = config_for(server, timeout_s=0.3)
        patient = FineTuneSettings("base", n_epochs=2, batch_size=2, poll_interval_s=0.02,
                                   lost_reply_settle_s=1.0)
        first = fine_tune(make_split(), None, patient, config=config, state_dir=tmp_path,
                          progress=lambda s: None)
        assert server.app.state.faults.injected["stall"] == 2
        client = sdk(server)
        assert len(list(client.fine_tuning.jobs.list())) == 1
        assert len(list(client.files.list(purpose="fine-tune"))) == 1
        # A run killed after creating the job but before saving its id: the job is found
        # again by its metadata tag.
        for state in tmp_path.glob("*.json"):
            state.unlink()
        lines: list[str] = []
        again = fine_tune(make_split(), None, patient, config=config, state_dir=tmp_path,
                          progress=lines.append)
        assert again.job_id == first.job_id
        assert any("made by an earlier run" in line for line in lines)
        assert len(list(client.fine_tuning.jobs.list())) == 1


def test_a_duplicate_made_by_a_late_lost_request_is_cancelled_before_it_trains(tmp_path):
    plan = {"POST /v1/fine_tuning/jobs": ("stall",)}
    settings = ServerSettings(faults=FaultConfig(plan=plan, stall_s=1.0))
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(step_delay_s=0.1),
                         settings=settings) as server:
        impatient = FineTuneSettings("base", n_epochs=2, batch_size=1, poll_interval_s=0.05,
                                     lost_reply_settle_s=0.0)
        lines: list[str] = []
        candidate = fine_tune(make_split(), None, impatient, config=config_for(server, timeout_s=0.2),
                              state_dir=tmp_path, progress=lines.append)
        jobs = {job.id: job for job in sdk(server).fine_tuning.jobs.list()}
    assert len(jobs) == 2  # the stalled create landed after the retry made its own job
    duplicate = next(job for job_id, job in jobs.items() if job_id != candidate.job_id)
    assert duplicate.status == "cancelled" and duplicate.fine_tuned_model is None
    assert jobs[candidate.job_id].status == "succeeded"
    assert any(f"cancelled duplicate fine-tuning job {duplicate.id}" in line for line in lines)


def test_cost_guard_refuses_before_uploading(server, tmp_path):
    pricing = PricingTable().with_overrides({"base": ModelPrice(1, 1, training_per_1m=1000.0)})
    guarded = FineTuneSettings("base", n_epochs=3, max_cost=0.01, poll_interval_s=0.02)
    with pytest.raises(CostLimitError) as refused:
        fine_tune(make_split(), None, guarded, config=config_for(server), state_dir=tmp_path,
                  pricing=pricing, progress=lambda s: None, count_tokens=lambda text: 1)
    # OpenAI's cookbook count with a one-token-per-string counter: 6 conversations ×
    # (2 messages × (3 + role + content) + 3 priming) = 78 tokens; × 3 epochs × $1000/1M.
    assert "$0.2340" in str(refused.value) and "78 training tokens" in str(refused.value)
    assert "exceeds max_cost $0.01" in str(refused.value)
    unpriced = FineTuneSettings("base", max_cost=5.0)
    with pytest.raises(CostLimitError, match="no training price"):
        fine_tune(make_split(), None, unpriced, config=config_for(server), state_dir=tmp_path,
                  progress=lambda s: None)
    assert list(sdk(server).files.list()) == []
    allowed = FineTuneSettings("base", n_epochs=3, max_cost=1.0, poll_interval_s=0.02)
    candidate = fine_tune(make_split(), None, allowed, config=config_for(server), state_dir=tmp_path,
                          pricing=pricing, progress=lambda s: None, count_tokens=lambda text: 1)
    assert any("estimated training cost $0.2340" in n for n in candidate.training.notes)


def test_failed_and_cancelled_jobs_raise_training_errors(tmp_path):
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(step_delay_s=0.05),
                         training=TrainingDefaults(min_examples=4)) as server:
        config = config_for(server)
        with pytest.raises(TrainingError, match=r"failed: .*at least 4") as failed:
            fine_tune(make_split(2), None, SETTINGS, config=config, state_dir=tmp_path,
                      progress=lambda s: None)
        assert "delete that file to start a new" in str(failed.value)
        with pytest.raises(TrainingError, match="failed"):  # rerun: same job, no new one
            fine_tune(make_split(2), None, SETTINGS, config=config, state_dir=tmp_path,
                      progress=lambda s: None)
        client = sdk(server)
        assert len(list(client.fine_tuning.jobs.list())) == 1

        def cancel_when_running(line: str) -> None:
            if "Fine-tuning job started" in line:
                job_id = line.split(":")[0]
                client.fine_tuning.jobs.cancel(job_id)

        slow = FineTuneSettings("base", n_epochs=30, batch_size=1, poll_interval_s=0.02)
        with pytest.raises(TrainingError, match="cancelled"):
            fine_tune(make_split(), None, slow, config=config, state_dir=tmp_path,
                      progress=cancel_when_running)


def test_job_timeout_then_reattach(tmp_path):
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(step_delay_s=0.05)) as server:
        config = config_for(server)
        slow = FineTuneSettings("base", n_epochs=4, batch_size=1, poll_interval_s=0.02,
                                job_timeout_s=0.1)
        with pytest.raises(TrainingError, match="run again to re-attach"):
            fine_tune(make_split(), None, slow, config=config, state_dir=tmp_path, progress=lambda s: None)
        patient = FineTuneSettings("base", n_epochs=4, batch_size=1, poll_interval_s=0.02)
        assert job_key(b"x", None, slow) == job_key(b"x", None, patient)  # polling knobs aside
        done = fine_tune(make_split(), None, patient, config=config, state_dir=tmp_path,
                         progress=lambda s: None)
        assert len(list(sdk(server).fine_tuning.jobs.list())) == 1
        assert done.training.log_history[-1]["step"] == 24


def test_a_job_the_server_forgot_is_started_again(tmp_path):
    for _ in range(2):  # two servers without a state dir: the second knows no jobs
        with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer()) as server:
            lines: list[str] = []
            fine_tune(make_split(), None, SETTINGS, config=config_for(server), state_dir=tmp_path,
                      progress=lines.append)
    assert any("is unknown to" in line and "starting a new one" in line for line in lines)


def test_api_key_never_leaks(tmp_path, capsys, caplog):
    secret = "sk-ftharness-FAKE-d41d8cd98f00b204e980"
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with serve_in_thread(ScriptedBackend("base"), train_fn=instant_trainer(),
                         settings=ServerSettings(api_key=secret),
                         training=TrainingDefaults(min_examples=4)) as server:
        good = config_for(server, api_key=secret)
        candidate = fine_tune(make_split(), None, SETTINGS, config=good, state_dir=tmp_path)
        texts += [repr(candidate), repr(candidate.config), json.dumps(candidate.training.as_dict())]
        failures = [
            lambda: fine_tune(make_split(2), None, SETTINGS, config=good, state_dir=tmp_path),
            lambda: fine_tune(make_split(), None, SETTINGS, state_dir=tmp_path,
                              config=config_for(server, api_key=secret + "-wrong")),
            lambda: fine_tune(make_split(), None, FineTuneSettings("nope", poll_interval_s=0.02),
                              config=good, state_dir=tmp_path),
        ]
        for failure in failures:
            with pytest.raises(TrainingError) as err:
                failure()
            texts.append("".join(traceback.format_exception(err.value)))
    assert "401" in texts[-2] and "404" in texts[-1]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    texts += [p.read_text() for p in Path(tmp_path).iterdir() if p.is_file()]
    for text in texts:
        assert secret not in text
        assert secret[:20] not in text


def test_spec_builder_maps_options_and_refuses_unknown_keys(server, tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"messages": ex.messages}) + "\n" for ex in make_split().examples))
    spec = HarnessSpec(path=tmp_path / "candidates.toml")
    suite = SuiteSpec("qa", "generation", train, None, train)
    ctx = SimpleNamespace(spec=spec, cache=SimpleNamespace(root=tmp_path / "cache"), options=BuildOptions(),
                          log=lambda s: None, count=lambda event: None)
    good = CandidateSpec("ft", "openai", {"n_epochs": 1},
                         {"model": "base", "base_url": server.base_url, "poll_interval_s": 0.02,
                          "suffix": "spec"})
    candidate = build(ctx, suite, good)
    assert candidate.model.startswith("ft:base:spec:") and candidate.name == "ft"
    assert list((tmp_path / "cache" / "openai-jobs").glob("*.json"))
    with pytest.raises(SpecError, match="unknown key 'n_epoch'"):
        build(ctx, suite, CandidateSpec("ft", "openai", {"n_epoch": 1}, {"model": "base"}))
    with pytest.raises(SpecError, match="missing key 'model'"):
        build(ctx, suite, CandidateSpec("ft", "openai", {}, {"base_url": server.base_url}))
    ctx.options = BuildOptions(openai_max_cost=0.0)
    pricey = CandidateSpec("ft2", "openai", {"n_epochs": 2}, {**good.options, "suffix": "other"})
    spec_with_price = HarnessSpec(path=spec.path, pricing={"base": {"input_per_1m": 1, "output_per_1m": 1,
                                                                    "training_per_1m": 5}})
    ctx.spec = spec_with_price
    started = time.monotonic()
    with pytest.raises(CostLimitError, match="exceeds max_cost"):
        build(ctx, suite, pricey)
    assert time.monotonic() - started < 5
