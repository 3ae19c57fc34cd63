"""Model families, each in its own folder: local causal LMs, encoders, OpenAI-compatible APIs."""
