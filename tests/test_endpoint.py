"""The endpoint candidate: any OpenAI-compatible server and model id, scored over real HTTP."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.backends.http import ClientConfig, RemoteCallError, RetryPolicy
from harness.backends.openai.endpoint import EndpointCandidate, build
from harness.context import BuildOptions
from harness.errors import SpecError
from harness.protocol import Candidate, DecodeParams
from harness.serve.app import ServerSettings
from harness.serve.faults import FaultConfig
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend
from harness.spec import CandidateSpec, HarnessSpec, SuiteSpec

FAST = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02)


@pytest.fixture(scope="module")
def server():
    faults = FaultConfig(rate=0.3, seed=11)
    with serve_in_thread(ScriptedBackend("deployed"), settings=ServerSettings(faults=faults)) as running:
        yield running


def test_scores_a_deployed_model_with_usage(server):
    config = ClientConfig(base_url=server.base_url, api_key="k", retry=FAST, concurrency=3)
    candidate = EndpointCandidate.connect("prod", "deployed", config)
    assert isinstance(candidate, Candidate) and candidate.kind == "endpoint"
    assert candidate.training is None and candidate.model_entry["owned_by"] == "local"
    prompts = [[{"role": "user", "content": f"item {i}"}] for i in range(8)]
    outputs = candidate.generate(prompts, DecodeParams(max_new_tokens=2))
    assert [o.text for o in outputs] == ["deployed: item"] * 8  # cut at max tokens
    assert all(o.prompt_tokens == 3 and o.completion_tokens == 2 and o.latency_s > 0 for o in outputs)


def test_fingerprint_depends_on_url_model_and_entry_but_not_key(server):
    url = server.base_url
    one = EndpointCandidate.connect("a", "deployed", ClientConfig(base_url=url, api_key="k1", retry=FAST))
    two = EndpointCandidate.connect("b", "deployed", ClientConfig(base_url=url, api_key="k2", retry=FAST))
    assert one.fingerprint == two.fingerprint
    with_creds = url.replace("http://", "http://user:pw@")
    three = EndpointCandidate.connect("c", "deployed", ClientConfig(base_url=with_creds, retry=FAST))
    assert three.fingerprint == one.fingerprint  # credentials are not part of identity
    unverified = EndpointCandidate.connect("d", "deployed", ClientConfig(base_url=url, retry=FAST),
                                           verify=False)
    assert unverified.fingerprint != one.fingerprint  # no /v1/models entry in it
    redeployed = EndpointCandidate("e", "deployed", one.config,
                                   {**one.model_entry, "created": one.model_entry["created"] + 1})
    assert redeployed.fingerprint != one.fingerprint
    other = EndpointCandidate("f", "other-model", one.config, one.model_entry)
    assert other.fingerprint != one.fingerprint


def test_unknown_model_is_a_clear_error(server):
    with pytest.raises(RemoteCallError, match="does not serve model 'missing'") as err:
        EndpointCandidate.connect("x", "missing", ClientConfig(base_url=server.base_url, retry=FAST))
    assert err.value.status_code == 404


def test_spec_builder(server, tmp_path):
    spec = HarnessSpec(path=tmp_path / "c.toml")
    suite = SuiteSpec("qa", "generation", None, None, tmp_path / "eval.jsonl")
    ctx = SimpleNamespace(spec=spec, options=BuildOptions(), log=lambda s: None)
    candidate = build(ctx, suite, CandidateSpec("prod", "endpoint", {},
                                                {"model": "deployed", "base_url": server.base_url,
                                                 "concurrency": 2, "max_attempts": 8}))
    assert candidate.model == "deployed" and candidate.config.concurrency == 2
    with pytest.raises(SpecError, match="not trained"):
        build(ctx, suite, CandidateSpec("p", "endpoint", {"n_epochs": 1}, {"model": "deployed"}))
    with pytest.raises(SpecError, match="unknown key 'url'"):
        build(ctx, suite, CandidateSpec("p", "endpoint", {}, {"model": "m", "url": "x"}))
    with pytest.raises(SpecError, match="concurrency"):
        build(ctx, suite, CandidateSpec("p", "endpoint", {}, {"model": "m", "concurrency": 0}))
