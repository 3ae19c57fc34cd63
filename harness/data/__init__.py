"""Datasets: load, validate, lint, convert and fingerprint fine-tuning data.

Importing this package is cheap: ``datasets``, ``numpy`` and ``transformers`` are imported
only inside the functions that need them.
"""

from harness.data.convert import ConversionResult, convert_examples, convert_file
from harness.data.findings import Finding
from harness.data.fingerprint import fingerprint_examples, fingerprint_split
from harness.data.formats import FORMATS, detect_format, from_messages, to_messages
from harness.data.lint import LintReport, lint_splits
from harness.data.loading import examples_from_raw, load_split
from harness.data.records import Example, Message, Split
from harness.data.tokens import (
    MAX_TOKENS_PER_EXAMPLE,
    TokenCounter,
    default_epochs,
    estimate_tokens,
    make_counter,
)
from harness.data.truncation import TruncationReport, count_truncation
from harness.data.validate import ValidationReport, validate_file

__all__ = [
    "FORMATS",
    "MAX_TOKENS_PER_EXAMPLE",
    "ConversionResult",
    "Example",
    "Finding",
    "LintReport",
    "Message",
    "Split",
    "TokenCounter",
    "TruncationReport",
    "ValidationReport",
    "convert_examples",
    "convert_file",
    "count_truncation",
    "default_epochs",
    "detect_format",
    "estimate_tokens",
    "examples_from_raw",
    "fingerprint_examples",
    "fingerprint_split",
    "from_messages",
    "lint_splits",
    "load_split",
    "make_counter",
    "to_messages",
    "validate_file",
]
