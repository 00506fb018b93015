"""Metrics and tracing exports fed by finished answer traces."""
