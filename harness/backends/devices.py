"""Which device local inference runs on: shared by every local model family."""

from __future__ import annotations


def pick_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
