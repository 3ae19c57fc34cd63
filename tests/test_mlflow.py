"""MLflow tracking against a real ``mlflow server`` on 127.0.0.1 (SQLite backend in a temp folder),
read back with ``MlflowClient`` and compared with ``results.json``; the local default store; an
unreachable server; secrets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient
from test_html_report import planted_state
from test_report import TRAINING

from harness.report import write_reports
from harness.report.tracking import EXPERIMENT, local_store, log_run

SECRET = "sk-abcdefghijklmnopqrstuvwx"  # in TRAINING's hyperparameters: must never reach MLflow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server on 127.0.0.1 serving artifacts from a temp folder."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow = shutil.which("mlflow") or f"{Path(sys.executable).parent}/mlflow"
    process = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=(root / "server.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        # no job runner: it would start eight more interpreters (huey consumers) that tracking never uses
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield uri
    os.killpg(process.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A planted-regression run with a trained candidate, its reports and outputs written."""
    state = planted_state()
    state.results[0].training = json.loads(json.dumps(TRAINING))
    reports = tmp_path_factory.mktemp("reports")
    write_reports(state, reports)
    outputs = {}
    for r in state.results:
        path = reports / "outputs" / r.suite / f"{r.candidate}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(json.dumps({"id": i, "prediction": p}) for i, p in
                                  zip(r.example_ids, r.predictions, strict=True)) + "\n")
        outputs[(r.suite, r.candidate)] = path
    adapter = reports / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 16}')
    return state, reports, outputs, {("sentiment", "lora"): adapter}


@pytest.mark.slow
def test_runs_read_back_from_a_real_server_equal_results_json(server, run, tmp_path, monkeypatch):
    state, reports, outputs, models = run
    monkeypatch.chdir(tmp_path)
    logged = log_run(state, reports, tracking_uri=server, outputs=outputs, model_dirs=models)
    assert list(tmp_path.iterdir()) == []  # no store of MLflow's own making in the working directory
    assert logged.warning is None and logged.tracking_uri == server
    document = json.loads((reports / "results.json").read_text())["state"]
    client = MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_name for p in parents] == ["sentiment"]
    (parent,) = parents
    assert parent.data.tags["ft.verdict"] == "FAIL"
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "reports")} >= {
        "reports/index.html", "reports/results.json", "reports/pr-comment.md", "reports/sentiment.md"}
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {r["candidate"] for r in document["results"]}
    for recorded in document["results"]:
        child = children[recorded["candidate"]]
        assert child.data.params["kind"] == recorded["kind"]
        assert child.data.params["model_fingerprint"] == recorded["fingerprint"]
        assert child.data.params["split_fingerprint"] == recorded["split_fingerprint"]
        for metric, value in recorded["metrics"].items():
            assert child.data.metrics[metric] == pytest.approx(value, abs=0, rel=1e-12)
        for metric, interval in recorded["details"]["intervals"].items():
            assert child.data.metrics[f"{metric}.ci_low"] == interval["low"]
            assert child.data.metrics[f"{metric}.ci_high"] == interval["high"]
        for gate in (g for g in document["gates"] if g["candidate"] == recorded["candidate"]):
            assert child.data.tags[f"ft.gate.{gate['metric']}"] == gate["verdict"]
            assert child.data.metrics[f"gate.{gate['metric']}.delta"] == gate["details"]["delta"]
            assert child.data.metrics[f"gate.{gate['metric']}.delta.ci_low"] == gate["details"]["ci"][0]
            assert child.data.metrics[f"gate.{gate['metric']}.flips.harmful"] == \
                gate["details"]["flips"]["counts"]["harmful"]
        (artifact,) = client.list_artifacts(child.info.run_id, "outputs")
        local = client.download_artifacts(child.info.run_id, artifact.path, str(reports / "down"))
        assert Path(local).read_text() == outputs[("sentiment", recorded["candidate"])].read_text()
    lora = children["lora"]
    assert lora.data.params["hp.learning_rate"] == "0.003" and lora.data.params["hp.r"] == "16"
    history = client.get_metric_history(lora.info.run_id, "train_loss")
    expected = [(e["step"], e["loss"]) for e in TRAINING["log_history"] if "loss" in e]
    assert sorted((m.step, m.value) for m in history) == expected
    model = client.get_logged_model(lora.data.tags["ft.model_id"])
    assert model.source_run_id == lora.info.run_id and model.name == "lora"
    assert model.tags["ft.model_fingerprint"] == lora.data.params["model_fingerprint"]
    import mlflow.artifacts

    local_model = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location,
                                                           tracking_uri=server, dst_path=str(reports / "model")))
    assert json.loads((local_model / "adapter_config.json").read_text()) == {"r": 16}
    everything = json.dumps([r.to_dictionary() for r in runs])
    assert SECRET not in everything


def test_without_a_uri_the_local_store_in_the_reports_folder_is_used(run):
    state, reports, outputs, _ = run
    logged = log_run(state, reports, outputs=outputs)
    uri, _ = local_store(reports)
    assert logged.tracking_uri == uri and (reports / "mlflow.db").is_file()
    runs = MlflowClient(tracking_uri=uri).search_runs([logged.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["base", "lora", "sentiment"]


def test_an_unreachable_server_is_a_warning_naming_it_and_the_runs_go_to_the_local_store(run, tmp_path):
    state, _, outputs, _ = run
    dead = f"http://user:hunter2-password@127.0.0.1:{_free_port()}"
    warnings: list[str] = []
    started = time.monotonic()
    logged = log_run(state, tmp_path, tracking_uri=dead, outputs=outputs, warn=warnings.append)
    assert time.monotonic() - started < 60
    (warning,) = warnings
    assert dead.replace("user:hunter2-password@", "") in warning and "hunter2" not in warning
    assert logged.tracking_uri == local_store(tmp_path)[0]
    runs = MlflowClient(tracking_uri=logged.tracking_uri).search_runs([logged.experiment_id])
    assert len(runs) == 3  # nothing lost


def test_the_session_logs_at_finish_and_says_where(tmp_path):
    from harness.options import SessionOptions
    from harness.session import EvalSession

    session = EvalSession(SessionOptions(reports_dir=tmp_path / "reports", mlflow=""))
    session.state = planted_state()
    session.finish(0)
    notes = session.state.run_info["notes"]
    assert any(n.startswith("MLflow: 1 suite run(s), 2 candidate run(s)") and "mlflow.db" in n for n in notes)
    assert (tmp_path / "reports" / "index.html").is_file() and (tmp_path / "reports" / "pr-comment.md").is_file()


@pytest.mark.parametrize("value", ["suites/", "127.0.0.1:5000"])
def test_a_value_that_is_no_tracking_uri_is_a_usage_error_naming_the_option(value):
    from harness.options import OptionError, SessionOptions

    with pytest.raises(OptionError, match="mlflow: expected a tracking URI"):
        SessionOptions(mlflow=value)
