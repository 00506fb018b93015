"""Answerdesk core."""
