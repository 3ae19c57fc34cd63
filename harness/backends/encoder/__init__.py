"""Sequence-classification encoders: inference, training, zero-shot."""
