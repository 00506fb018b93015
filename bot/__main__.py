"""`python -m bot` runs the `answerdesk` command line."""

from bot.cli import main

main()
