"""Model tiers pointing at the local model server, as the settings file would list them."""

from __future__ import annotations

KEY_ENV = "ANSWERDESK_TEST_MODEL_KEY"


def tiers(url: str, names: tuple[str, ...] = ("fast", "strong")) -> list[dict]:
    """One tier per name, served by `url` as `openai/<name>`, priced per token so that
    cost metrics have something to count. The key is read from ANSWERDESK_TEST_MODEL_KEY."""
    return [
        {
            "name": name,
            "model": f"openai/{name}",
            "api_base": url,
            "api_key_env": KEY_ENV,
            "timeout_s": 2,
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
        }
        for name in names
    ]
