"""vLLM as the inference engine of local causal LMs: a started or connected server, OpenAI API."""
