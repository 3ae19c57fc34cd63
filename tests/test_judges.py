"""Judges through ``ft-harness serve`` on 127.0.0.1: a deterministic rule reproduced exactly, a
position-biased judge whose wins become ties, unreadable judgments failing the metric, judgments
cached by prompt, priced and signed."""

from __future__ import annotations

import math
import re

import pytest
from gradedproject import ROWS, session, write_recorded, write_spec
from judgeserver import judge_backend, rule_preference, rule_rating

from harness.errors import HarnessError, SpecError
from harness.serve.runtime import serve_in_thread

MATERIALS = {i: re.search(r"material: (\w+)", fields).group(1) for i, fields, _ in ROWS}


def candidate_outputs() -> dict[str, str]:
    """Names the material on two items of three, and is long on every fourth."""
    return {i: (f"A fine item made of {MATERIALS[i]}." if n % 3 else "A fine item.") + (" Truly great." * 3 if n % 4 == 0 else "")
            for n, (i, _, _) in enumerate(ROWS)}


def other_outputs() -> dict[str, str]:
    """Names the material on every fifth item only."""
    return {i: f"Made of {MATERIALS[i]}." if n % 5 == 0 else "An item." for n, (i, _, _) in enumerate(ROWS)}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve_in_thread(judge_backend(tmp_path_factory.mktemp("judge"))) as running:
        yield running


def test_a_judge_answering_429_and_500_is_retried_and_its_key_never_shown(tmp_path, monkeypatch, caplog):
    import logging
    import secrets

    from harness.serve.app import ServerSettings
    from harness.serve.faults import FaultConfig

    key = f"sk-judge-{secrets.token_hex(12)}"
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", key)
    settings = ServerSettings(api_key=key, faults=FaultConfig(rate=0.5, kinds=("429", "500"), seed=5,
                                                              retry_after_s=0.01))
    caplog.set_level(logging.DEBUG, logger="harness")  # not the server's own loggers
    with serve_in_thread(judge_backend(tmp_path), settings=settings) as flaky:
        spec = _project(tmp_path, _judge(flaky, "rule", "flaky", extra="max_attempts = 6\nconcurrency = 2\n"))
        run = session(tmp_path, spec)
        try:
            result = run.evaluate("s", "cand")
        finally:
            run.finish(0)
    mine, theirs = candidate_outputs(), other_outputs()
    assert result.per_example["judge:rule"] == [
        {"A": 1.0, "B": -1.0, "tie": 0.0}[rule_preference(MATERIALS[i], mine[i], theirs[i])] for i, _, _ in ROWS]
    assert "retry" in caplog.text  # the faults were met and retried
    written = [caplog.text]  # the terminal of a failing run: tests/test_secret_leak.py
    written += [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                if p.is_file() and p.suffix in (".json", ".md", ".jsonl", ".html", ".txt")]
    assert not any(key in text or key[9:] in text for text in written)


def _judge(server, name: str, model: str, mode: str = "pairwise", extra: str = "") -> str:
    head = f'[suites.s.judges.{name}]\nmode = "{mode}"\nmodel = "{model}"\nbase_url = "{server.base_url}"\n'
    head += 'api_key_env = "FT_JUDGE_TEST_KEY"\nrubric = "Which description names the product better?"\n'
    return head + ('against = "other"\n' if mode == "pairwise" else "") + extra


def _project(tmp_path, judges: str, gate: str = ""):
    write_recorded(tmp_path, "cand", candidate_outputs())
    write_recorded(tmp_path, "other", other_outputs())
    return write_spec(tmp_path, judges + gate, candidates=("cand", "other"))


def test_a_rule_judge_is_reproduced_exactly_both_orders_agreeing(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "rule", "rule") + _judge(server, "rating", "rule", "pointwise"))
    run = session(tmp_path, spec)
    try:
        result = run.evaluate("s", "cand")
    finally:
        run.close()
    mine, theirs = candidate_outputs(), other_outputs()
    expected = [{"A": 1.0, "B": -1.0, "tie": 0.0}[rule_preference(MATERIALS[i], mine[i], theirs[i])]
                for i, _, _ in ROWS]
    assert result.per_example["judge:rule"] == expected
    assert {-1.0, 0.0, 1.0} <= set(expected)
    assert result.metrics["judge:rule"] == pytest.approx(sum(expected) / len(expected))
    assert result.per_example["judge:rating"] == [float(rule_rating(MATERIALS[i], mine[i])) for i, _, _ in ROWS]
    figures = result.details["judges"]["rule"]
    assert figures["position_flip_rate"] == 0.0 and figures["unparseable"] == 0
    assert figures["judgments"] == 2 * len(ROWS) and figures["usage"]["calls"] == 2 * len(ROWS)
    assert figures["usage"]["prompt_tokens"] > 0
    signature = result.signatures["judge:rule"]
    assert "model:rule@http://127.0.0.1" in signature and "mode:pairwise" in signature and "samples:1" in signature
    assert "prompt:" in signature and "against:other" in signature


def test_a_judge_that_always_prefers_the_first_answer_gives_only_ties_and_flips_every_time(server, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "biased", "first"))
    run = session(tmp_path, spec)
    result = run.evaluate("s", "cand")
    run.finish(0)
    assert set(result.per_example["judge:biased"]) == {0.0}
    figures = result.details["judges"]["biased"]
    assert figures["position_flip_rate"] == 1.0 and figures["flip_pairs"] == len(ROWS)
    assert figures["wins"] == figures["losses"] == 0
    # first-position wins are no length preference: the longer answer won as often as it was shown first
    assert figures["length_bias"]["longer_wins"] == pytest.approx(0.5)
    report = (tmp_path / "reports" / "s.md").read_text(encoding="utf-8")
    row = next(line for line in report.splitlines() if line.startswith("| cand ") and "judge:biased" in line
               and "pairwise" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[4:8] == ["0 / 24 / 0", "100.0%", "n/a", "0 of 48 (0.0%)"]
    assert "### Judges" in report.split("## Cost", 1)[1]


def test_garbage_replies_are_unparseable_and_fail_the_metric_past_the_threshold(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "noisy", "garbage", extra="max_unparseable = 0.2\n"))
    run = session(tmp_path, spec)
    with pytest.raises(HarnessError, match=r"judge 'noisy' on s/cand: 48 of 48 judgments unparseable \(100.0% > "
                                           r"max_unparseable 20%\).*Both answers have their merits"):
        run.evaluate("s", "cand")
    run.close()


def test_judgments_are_cached_by_prompt_so_changing_one_output_asks_again_only_for_it(server, tmp_path,
                                                                                       monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "rule", "rule"))
    first = session(tmp_path, spec)
    first.evaluate("s", "cand")
    first.close()
    changed = candidate_outputs()
    changed[ROWS[1][0]] = "Something else entirely."
    write_recorded(tmp_path, "cand", changed)
    second = session(tmp_path, spec)
    try:
        usage = second.evaluate("s", "cand").details["judges"]["rule"]["usage"]
    finally:
        second.close()
    assert usage["calls"] == 2 * len(ROWS) and usage["cached_calls"] == 2 * len(ROWS) - 2


def test_samples_are_averaged_per_item_and_self_consistency_reported(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "rater", "rater", "pointwise",
                                     'scale = "pass_fail"\nsamples = 3\ntemperature = 0.8\n'))
    run = session(tmp_path, spec)
    try:
        result = run.evaluate("s", "cand")
    finally:
        run.close()
    mine = candidate_outputs()
    assert result.per_example["judge:rater"] == [float(MATERIALS[i] in mine[i]) for i, _, _ in ROWS]
    figures = result.details["judges"]["rater"]
    assert figures["judgments"] == 3 * len(ROWS) and figures["self_consistency"] == 1.0
    assert "samples:3" in result.signatures["judge:rater"]


def test_judge_calls_are_refused_above_the_cost_limit(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    spec = _project(tmp_path, _judge(server, "rule", "rule"))
    spec.write_text('[harness.pricing.models.rule]\ninput_per_1m = 1000.0\noutput_per_1m = 1000.0\n\n'
                    + spec.read_text(), encoding="utf-8")
    run = session(tmp_path, spec, openai_max_cost=0.01)
    with pytest.raises(HarnessError, match=r"judge 'rule': refusing 48 judgment\(s\): estimated \$.* exceeds "
                                           r"--ft-openai-max-cost \$0.01"):
        run.evaluate("s", "cand")
    run.close()
    priced = session(tmp_path, spec, openai_max_cost=100.0)
    try:
        usage = priced.evaluate("s", "cand").details["judges"]["rule"]["usage"]
    finally:
        priced.close()
    assert usage["cost_usd"] == pytest.approx((usage["prompt_tokens"] + usage["completion_tokens"]) * 1000.0 / 1e6)


@pytest.mark.parametrize(("extra", "message"), [
    ('mode = "pairwise"\nmodel = "m"\nrubric = "r"\nagainst = "nobody"\n',
     r"judges\.j\.against: 'nobody' is neither a candidate of this suite \(good, poor\) nor \"reference\""),
    ('mode = "pointwise"\nmodel = "m"\nrubric = "r"\nsamples = 3\ntemperature = 0\n', r"judges\.j\.temperature: samples = 3 needs"),
    ('mode = "pointwise"\nmodel = "m"\nrubric = "r"\nscale = [5, 1]\n', r"judges\.j\.scale: expected \[low, high\]"),
    ('mode = "pairwise"\nmodel = "m"\nrubric = "r"\nagainst = "good"\nscale = [1, 5]\n',
     r"judges\.j\.scale: only a pointwise judge"),
    ('mode = "sideways"\nmodel = "m"\nrubric = "r"\n', r"judges\.j\.mode: 'sideways' is not one of"),
    ('mode = "pointwise"\nrubric = "r"\n', r"judges\.j\.model: missing key"),
    ('mode = "pointwise"\nmodel = "m"\nrubric = "r"\nprompt = "x"\n', r"judges\.j\.prompt: unknown key"),
])
def test_bad_judge_tables_fail_when_the_spec_loads(tmp_path, extra, message):
    from harness.spec import load_spec

    spec = write_spec(tmp_path, f"[suites.s.judges.j]\n{extra}")
    with pytest.raises(SpecError, match=message):
        load_spec(spec)


@pytest.mark.slow
def test_the_embedded_tiny_model_judges_through_the_same_path(tmp_path, monkeypatch):
    """A real (if weak) generating judge: every judgment generated by a tiny Llama behind `serve`,
    each read or counted as unparseable (never scored), cached for the next run."""
    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base
    from harness.serve.backend import LocalBackend

    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-tiny-judge-key")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"A B tie answer {fields} {ref}" for _, fields, ref in ROWS) * 3, encoding="utf-8")
    base = build_tiny_base(tmp_path / "base", corpus=corpus,
                           config=TinyModelConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                                                  num_attention_heads=2, num_key_value_heads=2,
                                                  max_position_embeddings=1024, warmup_epochs=0))
    with serve_in_thread(LocalBackend("tiny", base, batch_size=8)) as tiny:
        spec = _project(tmp_path, _judge(tiny, "tiny", "tiny", extra="max_unparseable = 1.0\nmax_tokens = 4\n"))
        first = session(tmp_path, spec)
        try:
            result = first.evaluate("s", "cand")
        finally:
            first.close()
        again = session(tmp_path, spec)
        try:
            usage = again.evaluate("s", "cand").details["judges"]["tiny"]["usage"]
        finally:
            again.close()
    figures = result.details["judges"]["tiny"]
    assert figures["judgments"] == 2 * len(ROWS) and figures["usage"]["completion_tokens"] > 0
    assert figures["usage"]["cached_calls"] == 0 and usage["cached_calls"] == usage["calls"] == 2 * len(ROWS)
    assert set(result.per_example["judge:tiny"]) <= {-1.0, 0.0, 1.0}
    read = figures["judgments"] - figures["unparseable"]
    assert figures["flip_pairs"] <= read // 2 and 0.0 <= figures["unparseable_share"] <= 1.0


class _LogprobHandler:
    """A chat-completions endpoint that answers "4" with top log-probabilities over 3, 4, 5 (G-Eval)."""

    @staticmethod
    def serve():
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                assert body["logprobs"] is True and body["top_logprobs"] == 20
                top = [{"token": t, "logprob": math.log(p), "bytes": None}
                       for t, p in (("4", 0.5), ("5", 0.3), ("3", 0.1), ("Four", 0.1))]
                reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "4"},
                                      "logprobs": {"content": [{"token": "4", "logprob": math.log(0.5),
                                                                "bytes": None, "top_logprobs": top}]}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def test_geval_weights_the_rating_by_the_endpoints_log_probabilities(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_JUDGE_TEST_KEY", "sk-test-judge")
    server = _LogprobHandler.serve()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        judge = (f'[suites.s.judges.geval]\nmode = "pointwise"\nmodel = "m"\nbase_url = "{url}"\n'
                 'api_key_env = "FT_JUDGE_TEST_KEY"\nrubric = "Rate it."\nlogprobs = true\n')
        spec = _project(tmp_path, judge)
        run = session(tmp_path, spec)
        try:
            result = run.evaluate("s", "cand")
        finally:
            run.close()
    finally:
        server.shutdown()
        server.server_close()
    expected = (4 * 0.5 + 5 * 0.3 + 3 * 0.1) / 0.9  # "Four" is not a scale token: left out, renormalised
    assert result.per_example["judge:geval"] == pytest.approx([expected] * len(ROWS))
    assert result.details["judges"]["geval"]["geval_weighted"] == len(ROWS)
    assert "weighting:geval" in result.signatures["judge:geval"]
