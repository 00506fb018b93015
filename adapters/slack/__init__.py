"""Slack adapter: Block Kit rendering and event handling."""
