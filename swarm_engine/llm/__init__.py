"""The LLM layer: invokers (llama.cpp server, in-process llama-cpp-python, Ollama,
OpenAI-compatible), prompts, constrained decoding, response repair, server control,
and the LLM manager that plugs into the engine's tick."""

from swarm_engine.llm.protocol import Choice, Decision, DecisionRequest, Invoker, LoraScale, PlanRequest, Sampling
from swarm_engine.llm.stats import LlmStats

__all__ = ["Choice", "Decision", "DecisionRequest", "Invoker", "LoraScale", "PlanRequest", "Sampling",
           "LlmStats"]
