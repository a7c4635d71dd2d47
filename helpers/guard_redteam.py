"""Red-team utilities for chapter 06: disguise a prompt the way attackers do, to test a guard."""

from __future__ import annotations

import base64
import codecs

_TO_HOMOGLYPH = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і",
                               "s": "ѕ", "A": "А", "E": "Е", "O": "О", "P": "Р", "C": "С", "T": "Т"})
_TO_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
OBFUSCATIONS = ("homoglyph", "zero_width", "leetspeak", "spaced", "base64", "rot13", "fullwidth")


def obfuscate(text: str, how: str) -> str:
    """Disguise ``text`` the way attackers do, to test a guard: one of :data:`OBFUSCATIONS`."""
    if how == "homoglyph":
        return text.translate(_TO_HOMOGLYPH)
    if how == "zero_width":
        return "\u200b".join(text)
    if how == "leetspeak":
        return text.lower().translate(_TO_LEET)
    if how == "spaced":
        return "  ".join(" ".join(word) for word in text.split())
    if how == "base64":
        return base64.b64encode(text.encode()).decode()
    if how == "rot13":
        return codecs.encode(text, "rot13")
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    raise ValueError(f"Unknown obfuscation {how!r}; choose one of {OBFUSCATIONS}.")
