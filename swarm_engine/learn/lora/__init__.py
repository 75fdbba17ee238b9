"""LoRA adapters learned from recorded LLM decisions (``swarm learn lora``)."""
