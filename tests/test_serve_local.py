"""Acceptance: a real tiny Llama, real LoRA training, the real SDK, real HTTP on 127.0.0.1.

* the ``openai_ft`` candidate end to end (upload, job, events, success, scoring with usage);
* the same flow with 30% of requests failing (429 with Retry-After, 500): one job only;
* a run killed while its job trains, started again: it re-attaches (one job only);
* the plain ``openai`` client used as OpenAI's documentation shows, only ``base_url`` changed;
* ``ft-harness serve --port 0`` serving the base and a trained adapter side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from harness.backends.http import ClientConfig, RetryPolicy
from harness.backends.openai.finetune import FineTuneSettings, fine_tune
from harness.data import load_split
from harness.protocol import DecodeParams
from harness.serve.app import ServerSettings
from harness.serve.backend import LocalBackend
from harness.serve.faults import FaultConfig
from harness.serve.jobs import TrainingDefaults
from harness.serve.runtime import serve_in_thread

pytestmark = pytest.mark.slow
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

WORDS = ["the", "capital", "of", "france", "is", "paris", "spain", "madrid", "italy", "rome",
         "answer", "yes", "no", "what", "is", "city", "country", "question", "small", "big", "red",
         "blue", "cat", "dog"]
# A trainable output head makes a few steps enough for the tiny model to learn the answer.
TRAINING = TrainingDefaults(n_epochs=1, batch_size=4, learning_rate=1e-2,
                            lora={"r": 4, "alpha": 8, "logging_steps": 1, "max_length": 64,
                                  "modules_to_save": ["lm_head"]})
FAST = RetryPolicy(max_attempts=8, initial_backoff_s=0.02, max_backoff_s=0.1)
TERMINAL = ("succeeded", "failed", "cancelled")


def write_jsonl(path: Path, n: int, answer: str, offset: int = 0) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"what is {WORDS[(i + offset) % len(WORDS)]} city {i}"},
                          {"role": "assistant", "content": answer}]} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base

    root = tmp_path_factory.mktemp("tiny")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(10))
                                for i in range(200)))
    config = TinyModelConfig(vocab_size=320, hidden_size=64, intermediate_size=128,
                             num_attention_heads=2, num_key_value_heads=2, warmup_epochs=0)
    return build_tiny_base(root / "base", corpus=corpus, config=config)


def tiny_server(base_dir: Path, **options):
    return serve_in_thread(LocalBackend("tiny", base_dir, batch_size=8), training=TRAINING, **options)


def test_openai_ft_candidate_end_to_end_with_a_real_tiny_model(base_dir, tmp_path):
    train = load_split(write_jsonl(tmp_path / "train.jsonl", 8, "yes"))
    valid = load_split(write_jsonl(tmp_path / "valid.jsonl", 4, "yes", offset=5))
    prompt = [[{"role": "user", "content": "what is paris city 3"}]]
    with tiny_server(base_dir) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        base_before = client.chat.completions.create(model="tiny", messages=prompt[0], temperature=0,
                                                     max_tokens=6).choices[0].message.content
        lines: list[str] = []
        candidate = fine_tune(train, valid, FineTuneSettings("tiny", n_epochs=2, suffix="accept",
                                                             poll_interval_s=0.1),
                              config=ClientConfig(base_url=server.base_url, retry=FAST),
                              state_dir=tmp_path / "state", progress=lines.append)
        outputs = candidate.generate(prompt * 3, DecodeParams(max_new_tokens=6))
        base_after = client.chat.completions.create(model="tiny", messages=prompt[0], temperature=0,
                                                    max_tokens=6).choices[0].message.content
        job = client.fine_tuning.jobs.retrieve(candidate.job_id)
        checkpoints = list(client.fine_tuning.jobs.checkpoints.list(job.id))
        completion = client.completions.create(model=candidate.model, prompt="what is", max_tokens=3)
    assert candidate.model.startswith("ft:tiny:accept:") and job.status == "succeeded"
    assert any("Step 4/4" in line for line in lines) and any("Fine-tuning job started" in line for line in lines)
    assert [o.text for o in outputs] == ["yes"] * 3  # it learnt the task; greedy is stable
    assert all(o.prompt_tokens > 5 and o.completion_tokens >= 1 for o in outputs)
    assert base_before == base_after != "yes"  # the adapter never leaks into the base model
    summary = candidate.training
    assert summary.train_loss is not None and summary.eval_loss is not None
    assert summary.log_history[0]["train_loss"] > summary.log_history[-1]["train_loss"]
    assert job.trained_tokens > 0 and [c.step_number for c in checkpoints] == [4, 2]
    assert checkpoints[0].metrics.valid_loss < checkpoints[1].metrics.valid_loss
    assert completion.usage.completion_tokens >= 1


def test_thirty_percent_faults_still_one_job(base_dir, tmp_path):
    train = load_split(write_jsonl(tmp_path / "train.jsonl", 8, "no"))
    faults = FaultConfig(rate=0.3, kinds=("429", "500"), seed=2, retry_after_s=0.05)
    with tiny_server(base_dir, settings=ServerSettings(faults=faults)) as server:
        candidate = fine_tune(train, None, FineTuneSettings("tiny", poll_interval_s=0.1),
                              config=ClientConfig(base_url=server.base_url, retry=FAST),
                              state_dir=tmp_path / "state", progress=lambda s: None)
        outputs = candidate.generate([[{"role": "user", "content": f"what is dog city {i}"}]
                                      for i in range(6)], DecodeParams(max_new_tokens=4))
        injected = dict(server.app.state.faults.injected)
        jobs = list(openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=10)
                    .fine_tuning.jobs.list())
    assert injected["429"] > 0 and injected["500"] > 0
    assert [job.id for job in jobs] == [candidate.job_id]
    assert all(o.completion_tokens >= 1 for o in outputs)


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from harness.backends.http import ClientConfig
    from harness.backends.openai.finetune import FineTuneSettings, fine_tune
    from harness.data import load_split

    base_url, data, state = sys.argv[1:4]
    fine_tune(load_split(data), None, FineTuneSettings("tiny", n_epochs=3, poll_interval_s=0.1),
              config=ClientConfig(base_url=base_url), state_dir=Path(state), progress=print)
""")


def test_a_killed_run_reattaches_to_its_job(base_dir, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", 8, "paris")
    state_dir = tmp_path / "state"
    with tiny_server(base_dir) as server:
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.base_url, str(data), str(state_dir)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        job_id = None
        while job_id is None and time.monotonic() < deadline and child.poll() is None:
            for path in state_dir.glob("openai-ft-*.json"):
                job_id = json.loads(path.read_text()).get("job_id")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert job_id, child.stdout.read()
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        assert client.fine_tuning.jobs.retrieve(job_id).status not in TERMINAL  # killed mid-job
        lines: list[str] = []
        candidate = fine_tune(load_split(data), None,
                              FineTuneSettings("tiny", n_epochs=3, poll_interval_s=0.1),
                              config=ClientConfig(base_url=server.base_url), state_dir=state_dir,
                              progress=lines.append)
        jobs = list(client.fine_tuning.jobs.list())
    assert candidate.job_id == job_id and [j.id for j in jobs] == [job_id]
    assert any(f"re-attaching to fine-tuning job {job_id}" in line for line in lines)


def test_the_documented_openai_client_flow_works_unchanged(base_dir, tmp_path):
    # 24 rows (6 steps): each job draws its own seed, as OpenAI's do, and after the 2 steps of 8 rows the
    # second adapter's answer sometimes still lost to the end of turn
    training_path = write_jsonl(tmp_path / "mydata.jsonl", 24, "madrid")
    with tiny_server(base_dir) as server:
        # As in OpenAI's fine-tuning guide; only base_url differs.
        from openai import OpenAI

        client = OpenAI(base_url=server.base_url, api_key="sk-anything")
        with open(training_path, "rb") as handle:
            uploaded = client.files.create(file=handle, purpose="fine-tune")
        job = client.fine_tuning.jobs.create(training_file=uploaded.id, model="tiny")
        while job.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.1)
            job = client.fine_tuning.jobs.retrieve(job.id)
        completion = client.chat.completions.create(
            model=job.fine_tuned_model,
            messages=[{"role": "system", "content": "You are a helpful assistant."},
                      {"role": "user", "content": "what is rome city 2"}],
        )
        assert job.status == "succeeded", job.error
        assert completion.choices[0].message.role == "assistant"
        assert completion.usage.prompt_tokens > 0 and completion.model == job.fine_tuned_model

        # A second adapter on the same PeftModel; mixed concurrent requests each get their own.
        other = client.files.create(file=("rome.jsonl", write_jsonl(tmp_path / "r.jsonl", 24, "rome").read_bytes()),
                                    purpose="fine-tune")
        second = client.fine_tuning.jobs.create(training_file=other.id, model="tiny", suffix="rome")
        while second.status not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.1)
            second = client.fine_tuning.jobs.retrieve(second.id)
        models = ["tiny", job.fine_tuned_model, second.fine_tuned_model] * 4

        def ask(model: str) -> str:
            reply = client.chat.completions.create(
                model=model, temperature=0, max_tokens=4,
                messages=[{"role": "user", "content": "what is rome city 2"}])
            return reply.choices[0].message.content

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, models))
        base_answer = answers[0]
        assert answers == [base_answer, "madrid", "rome"] * 4 and base_answer not in ("madrid", "rome")
        serve_cli_with_adapter(base_dir, server.store.resolve(server.store.jobs[job.id].adapter_dir))


def test_a_real_model_refuses_bad_input_with_400s_and_streams(base_dir):
    """Issue 17 items 9, 13, 15 against the 256-position tiny Llama (each was a 500 or a 200)."""
    with tiny_server(base_dir) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        tokenizer = server.backend.tokenizer
        long_text = " ".join(WORDS[i % len(WORDS)] for i in range(20_000))
        with pytest.raises(openai.BadRequestError) as chat:
            client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": long_text}])
        assert chat.value.code == "context_length_exceeded" and chat.value.param == "messages"
        assert "maximum context length is 256 tokens" in chat.value.message
        prompt_tokens = len(tokenizer(long_text)["input_ids"])
        with pytest.raises(openai.BadRequestError) as completion:
            client.completions.create(model="tiny", prompt=long_text, max_tokens=5)
        assert completion.value.code == "context_length_exceeded"
        assert f"{prompt_tokens} in the prompt, 5 in the completion" in completion.value.message
        for seed in (2**63, -(2**63) - 1):
            with pytest.raises(openai.BadRequestError) as seeded:
                client.chat.completions.create(model="tiny", temperature=0.8, seed=seed, max_tokens=3,
                                               messages=[{"role": "user", "content": "what is"}])
            assert seeded.value.param == "seed"
        sampled = client.chat.completions.create(model="tiny", temperature=0.8, seed=2**63 - 1,
                                                 max_tokens=3, messages=[{"role": "user", "content": "hi"}])
        assert sampled.usage.completion_tokens >= 1
        with pytest.raises(openai.BadRequestError) as empty:
            client.completions.create(model="tiny", prompt="", max_tokens=3)
        assert empty.value.param == "prompt"

        ids = tokenizer("what is paris city", add_special_tokens=False)["input_ids"]
        by_ids = client.completions.create(model="tiny", prompt=ids, max_tokens=4, temperature=0)
        by_text = client.completions.create(model="tiny", prompt=tokenizer.decode(ids), max_tokens=4,
                                            temperature=0)
        assert by_ids.choices[0].text == by_text.choices[0].text
        with pytest.raises(openai.BadRequestError) as outside:
            client.completions.create(model="tiny", prompt=[len(tokenizer) + 5], max_tokens=2)
        assert "outside the vocabulary" in outside.value.message

        request = {"model": "tiny", "temperature": 0, "max_tokens": 6,
                   "messages": [{"role": "user", "content": "what is rome city 2"}]}
        plain = client.chat.completions.create(**request)
        chunks = list(client.chat.completions.create(**request, stream=True,
                                                     stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            plain.choices[0].message.content
        assert chunks[-1].usage.model_dump() == plain.usage.model_dump()


def serve_cli_with_adapter(base_dir: Path, adapter_dir: Path) -> None:
    """``ft-harness serve --port 0`` announces its URL and serves base + adapter."""
    env = {**os.environ, "SERVE_KEY": "sk-cli-test-key-123456"}
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "serve", "--model", f"tiny={base_dir}", "--adapter",
         f"tuned={adapter_dir}", "--port", "0", "--api-key-env", "SERVE_KEY"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job inherits SIGINT ignored
    try:
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, process.stderr.read()
        url = line.split("listening on ")[1].split()[0]
        client = openai.OpenAI(base_url=url, api_key="sk-cli-test-key-123456", max_retries=0)
        assert {m.id for m in client.models.list()} == {"tiny", "tuned"}
        reply = client.chat.completions.create(model="tuned", temperature=0, max_tokens=4,
                                               messages=[{"role": "user", "content": "what is rome city 2"}])
        assert reply.choices[0].message.content == "madrid"
        assert httpx.get(f"{url}/models").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
