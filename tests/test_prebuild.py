"""The build helper (``[harness] build_processes = 2``): which candidates it trains ahead and in what
order, the spec key, stopping it, the session starting it, and that what it builds is what the
session builds."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import warm_python
from miniproject import SPEC, make_project

from harness.cli import prebuild as prebuild_cli
from harness.errors import SpecError
from harness.kinds import load_spec
from harness.runner import prebuild
from harness.runner.prebuild import BuildHelper, helper_command, prebuild_order
from harness.session import EvalSession, SessionOptions

REPO = Path(__file__).resolve().parent.parent
MAIN_JOB_SUITES = ["product_descriptions", "sentiment", "sentiment_minilm", "tuning"]  # test order


def test_the_helper_trains_encoder_suites_first_then_the_rest_from_the_last_suite_backwards():
    spec = load_spec(REPO / "fixtures" / "candidates.toml")
    assert spec.build_processes == 2
    assert prebuild_order(spec, MAIN_JOB_SUITES) == [
        ("sentiment_minilm", "lora"), ("sentiment_minilm", "full"),  # a base of their own: no wait
        ("tuning", "lora_search"),
        ("sentiment", "lora"), ("sentiment", "full"),
        ("product_descriptions", "lora"), ("product_descriptions", "full"),
    ]  # never the base, prompted or zero-shot candidates: nothing to train


def test_the_helper_builds_only_the_selected_suites():
    spec = load_spec(REPO / "fixtures" / "candidates.toml")
    assert prebuild_order(spec, ["sentiment", "sentiment", "no_such_suite"]) == [("sentiment", "lora"),
                                                                                ("sentiment", "full")]
    assert prebuild_order(spec, []) == []


def _mini_spec(tmp_path: Path, harness_line: str) -> Path:
    spec = make_project(tmp_path / "p")
    spec.write_text(SPEC.format(train="train.jsonl").replace("seed = 0\n", f"seed = 0\n{harness_line}\n", 1),
                    encoding="utf-8")
    return spec


@pytest.mark.parametrize(("line", "message"), [
    ("build_processes = 3", "expected an integer <= 2, got 3"),
    ("build_processes = 0", "expected an integer >= 1, got 0"),
    ('build_processes = "2"', "expected an integer"),
])
def test_build_processes_is_1_or_2(tmp_path: Path, line: str, message: str):
    with pytest.raises(SpecError, match=r"harness\.build_processes") as raised:
        load_spec(_mini_spec(tmp_path, line))
    assert message in str(raised.value)


def test_build_processes_defaults_to_the_session_alone(tmp_path: Path):
    assert load_spec(make_project(tmp_path / "p")).build_processes == 1


def test_the_helper_command_carries_the_sessions_build_options(tmp_path: Path):
    command = helper_command(Path("spec.toml"), Path("cache"), [("s", "lora"), ("t", "full")],
                             base_model="some/base", encoder_model="enc", resume=False)
    assert command[:3] == [sys.executable, "-m", "harness.cli.prebuild"]
    assert command[command.index("--spec") + 1] == str(Path("spec.toml").resolve())
    assert command[command.index("--cache-dir") + 1] == str(Path("cache").resolve())
    assert command[command.index("--base-model") + 1] == "some/base"
    assert command[command.index("--encoder-model") + 1] == "enc"
    assert "--no-resume" in command
    assert [command[i + 1] for i, part in enumerate(command) if part == "--candidate"] == ["s/lora", "t/full"]
    assert "--base-model" not in helper_command(Path("s"), Path("c"), [])


def test_stop_ends_the_helper_and_kills_one_that_ignores_sigterm():
    polite = BuildHelper.start([sys.executable, "-c", "import time; time.sleep(60)"], [])
    assert polite.running()
    began = time.monotonic()
    assert polite.stop() == -15
    assert not polite.running() and time.monotonic() - began < 5
    assert polite.stop() == -15  # stopping again is harmless

    stubborn = BuildHelper.start([sys.executable, "-c", "import signal, sys, time\n"
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True)\n"
                                  "time.sleep(60)"], [])
    time.sleep(1.0)  # let it install its handler
    assert stubborn.stop(grace_s=0.5) == -9


def test_a_candidate_the_helper_cannot_build_is_left_to_the_session(tmp_path: Path, capsys):
    spec = make_project(tmp_path / "p")
    assert prebuild_cli.main(["--spec", str(spec), "--cache-dir", str(tmp_path / "cache"),
                              "--candidate", "mini/nope"]) == 0
    assert "prebuild: mini/nope:" in capsys.readouterr().err
    assert not (tmp_path / "cache" / "artifacts").exists() or not any((tmp_path / "cache" / "artifacts").iterdir())


class _Started:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.stopped = 0

    def start(self, command, order):
        self.commands.append(list(command))
        recorder = self

        class _Helper:
            def stop(self, grace_s: float = 0.5) -> int:
                recorder.stopped += 1
                return 0

        return _Helper()


@pytest.mark.slow
def test_the_session_starts_the_helper_at_its_first_build_and_stops_it_at_the_end(
        tmp_path: Path, session_cache: Path, monkeypatch):
    started = _Started()
    monkeypatch.setattr(prebuild.BuildHelper, "start", started.start)
    spec = _mini_spec(tmp_path, "build_processes = 2")

    def session(**options) -> EvalSession:
        made = EvalSession(SessionOptions(spec_path=spec, root_dir=tmp_path, cache_dir=session_cache, **options))
        made.planned_suites = ["mini"]
        return made

    run = session()
    run.candidate("mini", "base")
    assert len(started.commands) == 1
    command = started.commands[0]
    assert command[command.index("--cache-dir") + 1] == str(session_cache.resolve())
    assert [command[i + 1] for i, part in enumerate(command) if part == "--candidate"] == ["mini/lora"]
    run.candidate("mini", "base")
    assert len(started.commands) == 1  # once per session
    run.close()
    assert started.stopped == 1

    for quiet in (session(no_cache=True), EvalSession(SessionOptions(spec_path=spec, root_dir=tmp_path,
                                                                     cache_dir=session_cache))):
        quiet.candidate("mini", "base")  # no shared cache / no planned suites: no helper
        quiet.close()
    assert len(started.commands) == 1


@pytest.mark.slow
def test_what_the_helper_builds_is_what_the_session_builds(tmp_path: Path, session_cache: Path):
    spec = make_project(tmp_path / "p")
    helped = tmp_path / "helped"
    done = warm_python.run(["-m", "harness.cli.prebuild", "--spec", str(spec), "--cache-dir", str(helped),
                            "--candidate", "mini/lora"], timeout=600)
    assert done.returncode == 0, done.stderr

    weights = {}
    for cache in (helped, session_cache):  # the helper's cache, and one where a session trains (or trained) it
        session = EvalSession(SessionOptions(spec_path=spec, root_dir=tmp_path, cache_dir=cache))
        _, adapter_dir = session.candidate("mini", "lora").saved_dirs()
        assert adapter_dir is not None
        weights[cache] = (adapter_dir / "adapter_model.safetensors").read_bytes()
        stats = session.ctx.cache.stats()
        session.close()
        if cache == helped:  # the session found what the helper trained: nothing built again
            assert all(counts.get("misses", 0) == 0 for counts in stats.values()), stats
            assert stats["adapter"]["hits"] == 1, stats
    assert weights[helped] == weights[session_cache]  # bit for bit (adapter configs name their cache's base path)
