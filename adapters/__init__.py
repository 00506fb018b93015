"""Answerdesk adapters."""
