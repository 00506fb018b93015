"""Answerdesk bot."""
