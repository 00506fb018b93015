"""Evaluation: a library of questions with expectations, scored separately for retrieval and
for the final answer, compared against a baseline. Platform-neutral: the command that runs a
library through the service lives in `bot/commands/eval.py`."""
