"""Personal data in free text: find it, replace it, count it (values never leave here).

Kinds: email addresses, phone numbers, payment card numbers (Luhn-checked, so order numbers
are left alone) and national identifiers (US SSN, UK NI number).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_NINO = re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
_PHONE = re.compile(
    r"(?<![\w/])(?<!\d[ .-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
    r"(?![\w/])(?![ .-]\d)"
)


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    counts: dict[str, int]  # kind → how many were replaced


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact_pii(text: str) -> Redacted:
    counts: Counter[str] = Counter()

    def replace(kind: str):  # type: ignore[no-untyped-def]
        def _sub(match: re.Match[str]) -> str:
            counts[kind] += 1
            return f"[{kind}]"

        return _sub

    def card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            counts["card_number"] += 1
            return "[card_number]"
        return match.group()

    out = _EMAIL.sub(replace("email"), text)
    out = _CARD.sub(card, out)
    out = _SSN.sub(replace("national_id"), out)
    out = _NINO.sub(replace("national_id"), out)
    out = _PHONE.sub(replace("phone"), out)
    return Redacted(out, dict(counts))


_PLACEHOLDER = re.compile(r"\[(?:email|phone|card_number|national_id)\]")


def mentions_personal_data(text: str) -> bool:
    """Whether ``text`` holds personal data, or held it before redaction (a placeholder)."""
    return bool(_PLACEHOLDER.search(text) or redact_pii(text).counts)


def redact_for_trace(text: str, mode: str) -> str:
    """Message text as the `redaction` setting allows it into traces and logs."""
    if mode == "none":
        return text
    if mode == "all":
        return f"[redacted: {len(text)} characters]"
    return redact_pii(text).text
