"""The candidate interface is declared on ``harness.protocol.Candidate``: every built-in kind's
candidate class inherits it (so each capability has an answer, its own or the default), and
nothing above the protocol probes a candidate with ``getattr``."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from harness import kinds
from harness.protocol import Candidate, DecodeParams, Generation

HARNESS = Path(__file__).resolve().parents[1] / "harness"
CAPABILITIES = ("token_counts", "prompt_lengths", "context_window", "priced_model", "prompt_details",
                "engine_details", "saved_dirs", "release", "always_predicts_labels")


def _candidate_classes() -> list[type]:
    """Every class in a built-in family's modules that generates outputs (a candidate)."""
    import importlib
    import pkgutil

    import harness.backends
    import harness.tuning

    found = []
    for package in (harness.backends, harness.tuning):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                own = vars(cls)
                if cls.__module__ == info.name and "generate" in own and \
                        ("kind" in own or "kind" in own.get("__annotations__", {})):
                    found.append(cls)
    return found


def test_every_candidate_class_inherits_the_declared_interface():
    classes = _candidate_classes()
    names = {cls.__name__ for cls in classes}
    assert {"LocalCausalLM", "EncoderClassifier", "ZeroShotEncoder", "EndpointCandidate", "OpenAIFineTuneCandidate",
            "PromptedCandidate", "RecordedCandidate", "VLLMCandidate"} <= names
    for cls in classes:
        assert Candidate in cls.__mro__, cls
        for capability in CAPABILITIES:
            assert hasattr(cls, capability), (cls, capability)


def test_a_kind_that_offers_only_generate_gets_every_default():
    class Echo(Candidate):
        name, kind, fingerprint, training = "echo", "echo", "e" * 16, None

        def generate(self, prompts, params):
            return [Generation(text=str(p[-1]["content"])) for p in prompts]

    echo = Echo()
    assert echo.token_counts([], []) is None and echo.prompt_lengths([]) is None
    assert echo.context_window() == (None, "unknown") and echo.priced_model() is None
    assert echo.prompt_details() is None and echo.engine_details() is None
    assert echo.saved_dirs() == (None, None) and echo.release() is None and not echo.always_predicts_labels
    assert isinstance(echo, Candidate)
    assert echo.generate([[{"role": "user", "content": "hi"}]], DecodeParams())[0].text == "hi"


def test_remote_kinds_are_priced_and_prompted_ones_forward_the_inner_model():
    from harness.backends.openai.endpoint import EndpointCandidate
    from harness.backends.prompted import PromptedCandidate

    assert EndpointCandidate.priced_model is not Candidate.priced_model
    assert PromptedCandidate.priced_model is not Candidate.priced_model
    assert PromptedCandidate.prompt_details is not Candidate.prompt_details


def test_no_module_probes_a_candidate_with_getattr():
    pattern = re.compile(r"(getattr|hasattr)\((candidate|built|inner|self\.inner|self\.local|chosen)\b")
    for path in HARNESS.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not pattern.search(text), f"{path}: {pattern.search(text).group(0)}"


def test_every_registered_kind_builds_a_candidate_class():
    hints = {name: inspect.signature(facts.builder).return_annotation for name, facts in kinds.KINDS.items()}
    assert hints  # every builder is declared; the type checker holds each to the Candidate interface
