"""Embedders: the local MiniLM model (default) and litellm-served models."""
