"""The answer flow: from a Question to an Answer (ARCHITECTURE §2)."""
