"""The LLM gateway: the one way Cohorta calls a model (see gateway.py)."""
