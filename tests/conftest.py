"""Shared test fixtures: offline settings and one tiny base model built per test session."""

from __future__ import annotations

import os
from pathlib import Path

# One intra-op thread in every process the tests start as well (read as torch loads): a run whose spec
# leaves torch_threads unset would otherwise run two threads beside the other worker's and wait on
# them (the README suite took 70 s instead of 13 that way).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One artifact cache for the whole test run, shared by every pytest-xdist worker: a base or
    adapter that one test builds is a cache hit for the next (the cache's own locks make the
    sharing safe). Only for tests that work the same on a cold or a warm cache; a test that
    asserts what a cold run builds keeps its own folder."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers' base temp folders share
    path = root / "ft-cache-session"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_base(session_cache):
    """A small tiny-Llama base (tokenizer trained on the fixture corpus, short warm-up), built
    once for the whole run through the session cache (one worker builds, the others wait)."""
    from harness.backends.hf.tiny import TinyModelConfig, build_tiny_base
    from harness.cache import CacheStore, cache_key, hash_file

    config = TinyModelConfig(hidden_size=64, intermediate_size=128, vocab_size=512, warmup_epochs=0.3)
    corpus = FIXTURES / "corpus.txt"
    key = cache_key("test-tiny-base", {"config": config.as_dict(), "corpus": hash_file(corpus)})
    with CacheStore(session_cache) as store:
        yield store.get_or_build(key, lambda out: build_tiny_base(out, corpus=corpus, config=config) and None,
                                 description="tests' tiny base").path


@pytest.fixture(scope="session")
def sentiment_train():
    from harness.data import load_split

    return load_split(FIXTURES / "sentiment" / "train.jsonl", name="train")


@pytest.fixture(scope="session")
def sentiment_eval():
    from harness.data import load_split

    return load_split(FIXTURES / "sentiment" / "eval.jsonl", name="eval")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Schedule for pytest-xdist's ``--dist loadgroup``: the ``slow`` tests first, so the workers
    start on the long ones and finish together on the short ones; and the tests of a module that
    share a module- or class-scoped fixture (a trained run, a server) kept on one worker, so it is
    built once. Every other test is scheduled on its own."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise
    for item in items:
        fixture_info = getattr(item, "_fixtureinfo", None)  # doctest items and the like have none
        if fixture_info is None:
            continue
        scopes = {d.scope for defs in fixture_info.name2fixturedefs.values() for d in defs}
        if scopes & {"module", "class", "package"}:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def pytest_configure(config):
    """Where tests run (not in pytest-xdist's controller, which only schedules), the model libraries
    most tests use are imported once and left out of the garbage collector's later full passes
    (harness.heap), which would otherwise walk all their objects again and again over a test run.

    With ``-n``, the controller starts the tests' warm interpreter (``warm_python``) and the workers
    start as forks of it instead of as fresh interpreters: they and every end-to-end run they fork
    share its one import of torch and the rest (``FT_TEST_COLD_WORKERS=1`` starts them cold).

    ``--dist loadgroup`` keeps a module's tests that share a trained run on one worker by writing
    the group into each node id; pytest 9.2's structured node ids make pytest-xdist 3.8 drop it
    silently (pytest-xdist#1386), rebuilding every shared fixture on each worker: refused here."""
    from importlib.metadata import version

    from packaging.version import Version

    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        import peft  # noqa: F401
        import torch
        import transformers  # noqa: F401
        import trl  # noqa: F401

        import harness.kinds  # noqa: F401  (the discovery point: registers every built-in candidate kind)
        from harness.heap import settle

        # tiny models train as fast on one intra-op thread as on two, and timings stay stable when
        # other processes share the cores
        torch.set_num_threads(1)
        settle()
    elif os.environ.get("FT_TEST_COLD_WORKERS") != "1":
        import warm_python

        python = warm_python.share()
        config.option.tx = [f"popen//python={python}" if spec == "popen" else spec for spec in config.option.tx]

    if (config.getoption("dist", "no") == "loadgroup" and Version(pytest.__version__) >= Version("9.2")
            and Version(version("pytest-xdist")) <= Version("3.8.0")):
        raise pytest.UsageError(f"pytest {pytest.__version__} with pytest-xdist {version('pytest-xdist')} "
                                "ignores --dist loadgroup's groups (pytest-xdist#1386): "
                                'pip install -e ".[test]" installs the pytest these tests use')
