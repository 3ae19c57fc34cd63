"""MLflow tracking (``--ft-mlflow [TRACKING_URI]``): the run's records logged as MLflow runs.

One MLflow run per suite, with a nested run per candidate. The suite run carries the suite's
verdict as a tag and its reports as artifacts; each candidate run carries its parameters (kind,
model and eval-set fingerprints, score signatures, hyperparameters, decoding), its metrics with the
bounds of their 95 % CI, each gated metric's verdict as a tag and its paired Δ with CI bounds as
metrics, training and validation loss as step metrics, and its per-example outputs as an artifact.
With ``model_dirs`` a candidate's trained adapter (or model) directory is logged as an MLflow
logged model whose source is the candidate's run (its id in the run's ``ft.model_id`` tag). Everything is read from the records (``results.json``); nothing is computed here.

Without a URI the store is local: ``sqlite:///<reports>/mlflow.db`` with artifacts under
``<reports>/mlartifacts``; nothing to start. A tracking server that cannot be reached is a
warning naming it (credentials removed) and the runs go to the local store instead, so none is
lost. Parameters pass through the harness's secret redaction; URLs are logged without credentials.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import slug
from harness.report.verdicts import run_verdict, suite_gates, suite_verdict
from harness.results import EvalResult, GateRecord, RunState
from harness.secrets import redact_text, redact_url, redact_value

EXPERIMENT = "ft-harness"
LOCAL_DB = "mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"
PARAM_LIMIT = 6000  # MLflow refuses longer parameter values
CONNECT_TIMEOUT_S = "10"


@dataclass(frozen=True)
class Logged:
    """Where the runs went: the tracking URI used, the experiment and each suite's run id."""

    tracking_uri: str
    experiment_id: str
    suite_runs: dict[str, str]
    candidate_runs: dict[tuple[str, str], str]
    warning: str | None = None


def local_store(reports_dir: Path) -> tuple[str, str]:
    """The embedded default: a SQLite tracking store and an artifact folder in the reports folder."""
    reports_dir = Path(reports_dir).resolve()
    return f"sqlite:///{reports_dir / LOCAL_DB}", (reports_dir / LOCAL_ARTIFACTS).as_uri()


def _metric_name(name: str) -> str:
    """A name MLflow accepts (letters, digits, ``_ - . / space``)."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return redact_text(text)[:PARAM_LIMIT]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def candidate_params(result: EvalResult) -> dict[str, str]:
    """The candidate run's parameters: what produced the model and how it was scored."""
    params = {"kind": result.kind, "model_fingerprint": result.fingerprint, "task": result.task,
              "split": result.split, "split_fingerprint": result.split_fingerprint, "n": str(result.n)}
    params.update({f"signature.{_metric_name(m)}": s for m, s in sorted(result.signatures.items()) if s})
    training = result.training or {}
    hyperparameters = redact_value(dict(training.get("hyperparameters") or {}))
    params.update({f"hp.{_metric_name(k)}": v for k, v in sorted(hyperparameters.items())})
    decoding = result.details.get("decode") or result.details.get("decoding")
    if isinstance(decoding, Mapping):
        params.update({f"decode.{_metric_name(k)}": v for k, v in sorted(redact_value(dict(decoding)).items())})
    return {name: _param(value) for name, value in params.items()}


def candidate_metrics(result: EvalResult) -> dict[str, float]:
    """Each metric's value and the bounds of its recorded 95 % CI."""
    metrics = {_metric_name(m): float(v) for m, v in sorted(result.metrics.items()) if _finite(v)}
    for metric, interval in sorted((result.details.get("intervals") or {}).items()):
        for bound in ("low", "high"):
            if _finite(interval.get(bound)):
                metrics[f"{_metric_name(metric)}.ci_{bound}"] = float(interval[bound])
    return metrics


def gate_metrics(gates: list[GateRecord]) -> dict[str, float]:
    """Each gated metric's baseline, paired Δ and the Δ's CI bounds, and its flip counts."""
    metrics = {}
    for g in gates:
        prefix = f"gate.{_metric_name(g.metric)}"
        ci = g.details.get("ci") or [None, None]
        values = {"baseline": g.baseline, "delta": g.details.get("delta"), "delta.ci_low": ci[0],
                  "delta.ci_high": ci[1]}
        values.update({f"flips.{k}": v for k, v in ((g.details.get("flips") or {}).get("counts") or {}).items()})
        metrics.update({f"{prefix}.{k}": float(v) for k, v in values.items() if _finite(v)})
    return metrics


def loss_steps(result: EvalResult) -> list[tuple[str, float, int]]:
    """``(metric, value, step)`` of the training and validation loss curves."""
    points = []
    for entry in (result.training or {}).get("log_history") or []:
        step = entry.get("step")
        if not isinstance(step, int) or entry.get("final_evaluation"):
            continue
        for key, name in (("loss", "train_loss"), ("eval_loss", "eval_loss")):
            if _finite(entry.get(key)):
                points.append((name, float(entry[key]), step))
    return points


@contextmanager
def _quick_failures() -> Iterator[None]:
    """MLflow's HTTP client retries for minutes by default; fail fast while probing a server."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = CONNECT_TIMEOUT_S
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _experiment(client: Any, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(EXPERIMENT, artifact_location=artifact_location))


def _open(tracking_uri: str | None, reports_dir: Path) -> tuple[Any, str, str, str | None]:
    """A client and experiment on ``tracking_uri``, or on the local store when it is unreachable."""
    from mlflow.tracking import MlflowClient

    local_uri, local_artifacts = local_store(reports_dir)
    if tracking_uri:
        try:
            with _quick_failures():
                client = MlflowClient(tracking_uri=tracking_uri)
                experiment = _experiment(client, None)
            return client, tracking_uri, experiment, None
        except Exception as exc:
            reason = redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
            warning = (f"MLflow tracking server {redact_url(tracking_uri)} could not be reached ({reason}); "
                       f"the runs were logged to the local store {local_uri} instead")
    else:
        warning = None
    Path(reports_dir).mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=local_uri)
    return client, local_uri, _experiment(client, local_artifacts), warning


def _log_model(client: Any, experiment: str, run_id: str, result: EvalResult, directory: Path) -> str:
    """The trained adapter (or model) directory as an MLflow logged model of the candidate run."""
    model = client.create_logged_model(experiment, name=_metric_name(result.candidate), source_run_id=run_id,
                                       tags={"ft.kind": result.kind, "ft.model_fingerprint": result.fingerprint},
                                       model_type="peft-adapter" if (directory / "adapter_config.json").is_file()
                                       else "transformers")
    client.log_model_artifacts(model.model_id, str(directory))
    client.finalize_logged_model(model.model_id, "READY")
    client.set_tag(run_id, "ft.model_id", model.model_id)
    return str(model.model_id)


def log_run(state: RunState, reports_dir: Path, *, tracking_uri: str | None = None,
            outputs: Mapping[tuple[str, str], Path] | None = None,
            model_dirs: Mapping[tuple[str, str], Path] | None = None,
            warn: Callable[[str], None] | None = None) -> Logged:
    """Log every suite of ``state`` (one run each, a nested run per candidate); see the module doc."""
    reports_dir = Path(reports_dir)
    client, used_uri, experiment, warning = _open(tracking_uri, reports_dir)
    if warning and warn is not None:
        warn(warning)
    with _default_uri(used_uri):  # what MLflow resolves by itself goes to the same store, never ./mlflow.db
        return _log_suites(client, experiment, state, reports_dir, used_uri, warning, outputs or {},
                           model_dirs or {})


@contextmanager
def _default_uri(uri: str) -> Iterator[None]:
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def _log_suites(client: Any, experiment: str, state: RunState, reports_dir: Path, used_uri: str,
                warning: str | None, outputs: Mapping[tuple[str, str], Path],
                model_dirs: Mapping[tuple[str, str], Path]) -> Logged:
    """One suite run and its nested candidate runs per suite of ``state``."""
    from mlflow.entities import Metric, Param


    suite_runs: dict[str, str] = {}
    candidate_runs: dict[tuple[str, str], str] = {}
    run_status = run_verdict(state).status
    for suite in state.suites():
        verdict = suite_verdict(state, suite)
        parent = client.create_run(experiment, run_name=suite, tags={
            "ft.suite": suite, "ft.verdict": verdict.status, "ft.run_verdict": run_status,
            "mlflow.note.content": verdict.line})
        parent_id = parent.info.run_id
        suite_runs[suite] = parent_id
        for name in (f"{slug(suite)}.md", "index.html", "pr-comment.md", "results.json"):
            if (reports_dir / name).is_file():
                client.log_artifact(parent_id, str(reports_dir / name), artifact_path="reports")
        gates = suite_gates(state, suite)
        for result in sorted((r for r in state.results if r.suite == suite), key=lambda r: r.candidate):
            mine = [g for g in gates if g.candidate == result.candidate]
            tags = {"mlflow.parentRunId": parent_id, "ft.suite": suite, "ft.candidate": result.candidate,
                    "ft.kind": result.kind}
            tags.update({f"ft.gate.{_metric_name(g.metric)}": g.verdict for g in mine})
            run = client.create_run(experiment, run_name=result.candidate, tags=tags)
            run_id = run.info.run_id
            candidate_runs[(suite, result.candidate)] = run_id
            metrics = {**candidate_metrics(result), **gate_metrics(mine)}
            timestamp = _now_ms()
            client.log_batch(run_id, metrics=[Metric(k, v, timestamp, 0) for k, v in metrics.items()],
                             params=[Param(k, v) for k, v in candidate_params(result).items()])
            steps = [Metric(name, value, timestamp, step) for name, value, step in loss_steps(result)]
            for start in range(0, len(steps), 1000):
                client.log_batch(run_id, metrics=steps[start:start + 1000])
            path = outputs.get((suite, result.candidate))
            if path is not None and Path(path).is_file():
                client.log_artifact(run_id, str(path), artifact_path="outputs")
            model = model_dirs.get((suite, result.candidate))
            if model is not None and Path(model).is_dir():
                _log_model(client, experiment, run_id, result, Path(model))
            client.set_terminated(run_id, status="FINISHED")
        client.set_terminated(parent_id, status="FINISHED")  # a failed gate is a finished run: see ft.verdict
    return Logged(used_uri, experiment, suite_runs, candidate_runs, warning)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
