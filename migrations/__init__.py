"""Answerdesk migrations."""
