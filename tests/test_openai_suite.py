"""A suite runs the ``openai`` candidate through the plugin against ``ft-harness serve`` on
127.0.0.1, with 30% of requests failing by injection: one job, scored rows in the report."""

from __future__ import annotations

import openai
import pytest
import warm_python
from miniproject import PYTEST_OPTIONS, make_project, read_results

from harness.serve.app import ServerSettings
from harness.serve.backend import LocalBackend
from harness.serve.faults import FaultConfig
from harness.serve.jobs import TrainingDefaults
from harness.serve.runtime import serve_in_thread

pytestmark = pytest.mark.slow

KEY_ENV = "FT_TEST_OPENAI_KEY"
SECRET = "sk-test-DO-NOT-LEAK-4242"
TRAINING = TrainingDefaults(n_epochs=1, batch_size=8, learning_rate=1e-2,
                            lora={"r": 4, "alpha": 8, "max_length": 96, "modules_to_save": ["lm_head"]})

OPENAI_CANDIDATE = """
[suites.mini.candidates.openai]
kind = "openai"
model = "tiny"
base_url = "{base_url}"
api_key_env = "{key_env}"
poll_interval_s = 0.2
max_attempts = 10
params = {{ n_epochs = 1 }}
"""

OPENAI_SUITE = '''
import pytest

pytestmark = pytest.mark.ft_suite("mini")


def test_openai_candidate_is_scored(evaluate, compare):
    base = evaluate("base")
    tuned = evaluate("openai")
    compare(base, tuned, metric="accuracy")
    assert tuned.n == base.n
    assert tuned.usage["completion_tokens"] > 0
'''


def test_openai_candidate_through_the_plugin_with_faults(tmp_path, tiny_base, monkeypatch):
    project = tmp_path / "p"
    spec = make_project(project)
    (project / "test_mini.py").write_text(OPENAI_SUITE, encoding="utf-8")
    faults = FaultConfig(rate=0.3, kinds=("429", "500"), seed=7, retry_after_s=0.05)
    settings = ServerSettings(api_key=SECRET, faults=faults)
    with serve_in_thread(LocalBackend("tiny", tiny_base, batch_size=16), settings=settings,
                         training=TRAINING) as server:
        spec.write_text(spec.read_text(encoding="utf-8")
                        + OPENAI_CANDIDATE.format(base_url=server.base_url, key_env=KEY_ENV), encoding="utf-8")
        env = {**__import__("os").environ, KEY_ENV: SECRET}
        done = warm_python.run(
            ["-m", "pytest", str(project / "test_mini.py"), *PYTEST_OPTIONS,
             "--rootdir", str(project), "--ft-spec", str(spec), "--ft-cache-dir", str(tmp_path / "cache"),
             "--ft-reports-dir", str(project / "reports")],
            cwd=project, env=env, timeout=600)
        injected = dict(server.app.state.faults.injected)
        jobs = list(openai.OpenAI(base_url=server.base_url, api_key=SECRET, max_retries=10)
                    .fine_tuning.jobs.list())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sum(injected.values()) > 0
    assert len(jobs) == 1 and jobs[0].status == "succeeded"
    results = {r["candidate"]: r for r in read_results(project / "reports")["results"]}
    assert results["openai"]["kind"] == "openai"
    assert results["openai"]["fingerprint"] != results["base"]["fingerprint"]
    report = (project / "reports" / "mini.md").read_text(encoding="utf-8")
    assert "| openai" in report
    for text in (done.stdout, done.stderr, report, (project / "reports" / "results.json").read_text()):
        assert SECRET not in text
    assert not any(SECRET in p.read_text(errors="ignore") for p in (tmp_path / "cache").rglob("*") if p.is_file())
