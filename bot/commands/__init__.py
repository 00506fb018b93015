"""One module per command group; `bot/cli.py` only parses and dispatches.

Each module has `register(sub)`, which adds its sub-parser and sets `handler` on it: a
function `(settings, args) -> exit code`.
"""
