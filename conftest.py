"""Repository-level pytest configuration for the example suites.

The ft-harness plugin itself is loaded through its ``pytest11`` entry point; this file only keeps
the example runs offline (no model hub, no dataset hub, no telemetry).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
