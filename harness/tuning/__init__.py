"""Hyperparameter search over cached candidates."""
