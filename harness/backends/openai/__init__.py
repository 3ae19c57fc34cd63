"""OpenAI-compatible APIs: client, fine-tuning jobs, deployed endpoints."""
