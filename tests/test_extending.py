"""docs/extending.md runs: every ``python`` block of each section, in order, in one namespace per
section (the backend example against a real server on 127.0.0.1)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.serve.app import ServerSettings
from harness.serve.runtime import serve_in_thread
from harness.serve.scripted import ScriptedBackend
from harness.spec import registry

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "extending.md").read_text(encoding="utf-8")


def _sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for part in re.split(r"^## ", PAGE, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        sections[title.strip()] = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    return sections


SECTIONS = _sections()


def test_the_page_covers_the_four_extension_points():
    assert list(SECTIONS) == ["A metric", "A candidate kind", "A report section", "A backend"]
    assert all(SECTIONS.values())


@pytest.mark.parametrize("title", ["A metric", "A candidate kind", "A report section"])
def test_each_worked_example_runs(title, tmp_path):
    namespace: dict = {"workdir": str(tmp_path), "__name__": f"extending_{title.split()[-1]}"}
    try:
        for block in SECTIONS[title]:
            exec(compile(block, f"docs/extending.md: {title}", "exec"), namespace)
    finally:
        registry.KINDS.pop("echo", None)


def test_the_backend_example_runs_against_a_real_server():
    with serve_in_thread(ScriptedBackend("base"), settings=ServerSettings()) as server:
        namespace: dict = {"base_url": server.base_url, "model": "base", "__name__": "extending_backend"}
        for block in SECTIONS["A backend"]:
            exec(compile(block, "docs/extending.md: A backend", "exec"), namespace)
