"""Local causal LMs through transformers / peft / trl: inference, likelihood, training."""
