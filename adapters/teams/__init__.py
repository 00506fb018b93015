"""Microsoft Teams over the Bot Framework. Only `adapters/teams/sdk.py` imports botbuilder."""
