"""A project outside this repository: the plugin filters the libraries' deprecation warnings the repo
filters, goes offline where the spec's base is a path, and names `[harness] base_model` when it is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.context import BuildContext, looks_like_path
from harness.errors import SpecError
from harness.spec import load_spec

PROBE = '''
import os


def test_probe(request):
    lines = request.config.getini("filterwarnings")
    assert any("is_gradient_checkpointing" in line for line in lines), lines
    assert any("torch.jit.script_method" in line for line in lines), lines
    print("OFFLINE=" + os.environ.get("HF_HUB_OFFLINE", "unset"))
'''


def _project(root: Path, base_model: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # none of the repo's filters
    (root / "candidates.toml").write_text(f'[harness]\nbase_model = "{base_model}"\n', encoding="utf-8")
    (root / "test_probe.py").write_text(PROBE, encoding="utf-8")


@pytest.mark.parametrize("base_model, offline", [("./models/my-base", "1"), ("org/model", "unset")])
def test_an_outside_project_gets_the_filters_and_offline_mode_for_a_path(tmp_path, base_model, offline):
    _project(tmp_path, base_model)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                                            "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-m", "pytest", "test_probe.py", "-s", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "--ft-spec", "candidates.toml"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"OFFLINE={offline}" in done.stdout


def test_a_missing_base_model_path_is_named_by_its_spec_key_without_asking_the_hub(tmp_path):
    (tmp_path / "spec.toml").write_text('[harness]\nbase_model = "models/base/v1"\n', encoding="utf-8")
    spec = load_spec(tmp_path / "spec.toml")
    ctx = BuildContext(spec=spec, cache=None, base_model=spec.base_model)
    with pytest.raises(SpecError) as info:
        ctx.base_model_dir()
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'spec.toml'}: [harness] base_model: 'models/base/v1' is a path and "
                              f"{tmp_path / 'models/base/v1'} does not exist")


def test_paths_and_hub_ids_are_told_apart():
    assert [looks_like_path(r) for r in ("/models/x", "./x", "~/x", "a/b/c", "org/name", "gpt2")] == \
        [True, True, True, True, False, False]
