"""Candidate kinds are registered by their families: third-party kinds through the ``harness.kinds``
entry point group, refused when registered twice or without a callable builder."""

from __future__ import annotations

import sys
import textwrap

import pytest

from harness.errors import SpecError
from harness.spec import load_spec, registry
from harness.spec.registry import KindFacts, register_kind


def _third_party_package(root) -> None:
    (root / "echo_family.py").write_text(textwrap.dedent('''
        from harness.spec.registry import KindFacts, register_kind

        def build_echo(ctx, suite, spec):
            raise NotImplementedError

        def register():
            register_kind(KindFacts("echo", build_echo, ("path", "seed"), summary="replays a file",
                                    required=("path",)))
    '''), encoding="utf-8")
    info = root / "echo_family-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-family\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[harness.kinds]\necho = echo_family:register\n", encoding="utf-8")


def test_a_third_party_kind_registers_through_the_entry_point_group(tmp_path, monkeypatch):
    _third_party_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_discovered", [])
    spec = tmp_path / "spec.toml"
    spec.write_text('[suites.s]\ntask = "generation"\neval = "e.jsonl"\n'
                    '[suites.s.candidates.c]\nkind = "echo"\npath = "out.jsonl"\nseed = "one"\n', encoding="utf-8")
    try:
        with pytest.raises(SpecError, match=r"candidates\.c\.seed"):  # its declared option schema is checked
            load_spec(spec)
        assert registry.kind_facts("echo").summary == "replays a file"
        spec.write_text(spec.read_text(encoding="utf-8").replace('seed = "one"', "colour = 1"), encoding="utf-8")
        with pytest.raises(SpecError, match=r"candidates\.c.*colour"):
            load_spec(spec)
    finally:
        registry.KINDS.pop("echo", None)
        sys.modules.pop("echo_family", None)


def test_a_kind_registered_twice_or_without_a_builder_is_refused():
    def build(ctx, suite, spec):
        raise NotImplementedError

    with pytest.raises(ValueError, match="'lora' is registered twice"):
        register_kind(KindFacts("lora", build))
    with pytest.raises(TypeError, match="not callable"):
        register_kind(KindFacts("nothing", "harness.backends.hf.candidates:build_base"))  # type: ignore[arg-type]
    assert "nothing" not in registry.KINDS


def test_the_spec_layer_names_no_module_above_it():
    """No ``"module:attr"`` targets: every dependency between layers is an import lint-imports sees."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "harness"
    for path in [*sorted((root / "spec").glob("*.py")), root / "kinds.py"]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'"harness\.[a-z_.]+:', text), path
        assert "import_module(\"harness" not in text, path
