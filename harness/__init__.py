"""ft-harness: pytest-native evaluation and regression gating for fine-tuned LLMs."""

__version__ = "0.1.0"
