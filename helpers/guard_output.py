"""Output checks of chapter 06's guard: secrets in any form (one answer or a whole conversation), links outside an
allow-list, and moderation (a local MiniLM head, or OpenAI's moderation endpoint)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

import numpy as np

from helpers.guard_input import Verdict, undecodable
from helpers.guard_links import link_reasons
from helpers.guard_model import MODERATION_FILE, LinearHead, embed, load_head
from helpers.guard_normalise import as_text, caesar, decoded_views, normalise, skeleton
from helpers.models import OPENAI_MODERATION_MODEL

# the words people spell a secret with: the NATO alphabet and digit names
SPELLING = {word: word[0] for word in "alpha alfa bravo charlie delta echo foxtrot golf hotel india juliet juliett kilo "
            "lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey whisky xray x-ray yankee "
            "zulu".split()}
SPELLING |= {word: str(digit) for digit, word in enumerate("zero one two three four five six seven eight nine".split())}
SPELLING |= {"niner": "9", "dash": "", "hyphen": "", "minus": ""}
MIN_PIECE = 4  # a secret split into pieces: each piece at least this long (shorter ones match by chance)


def _compact(text: str) -> str:
    """Letters and digits only, lower case: 'P-L U.M 4471' -> 'plum4471'."""
    return re.sub(r"[\W_]+", "", text).lower()


def spelled(text: str) -> str:
    """The letters a text spells one by one: 'Zulu Echo, then 7 7' -> 'ze77' (single characters and spelling words)."""
    words = re.findall(r"[a-z]+(?:-ray)?|\d", text.lower())
    return "".join(SPELLING.get(word, word if len(word) == 1 else "") for word in words)


def _found_in(compact_secret: str, compact_texts: list[str], fuzzy: bool) -> bool:
    return any(compact_secret in text or (fuzzy and compact_secret[::-1] in text) for text in compact_texts)


def leak_form(output: str, secret: str) -> str | None:
    """How ``secret`` appears in ``output`` (e.g. 'verbatim', 'NATO alphabet', 'base32 payload 1'), or None."""
    if not secret:
        return None
    text = normalise(output)
    if secret in output or secret in text:
        return "verbatim"
    if secret.lower() in text.lower():
        return "different case"
    compact_secret = _compact(secret)
    fuzzy = len(compact_secret) >= 6  # short secrets would match by chance once spacing is ignored
    if not fuzzy:
        return None
    compact_text = _compact(text)
    if compact_secret in compact_text:
        return "spaced or punctuated"
    if compact_secret[::-1] in compact_text:
        return "reversed"
    if _compact(skeleton(secret)) in _compact(skeleton(text)):
        return "homoglyphs or leetspeak"
    if compact_secret in spelled(text):
        return "spelled out (letters, NATO alphabet or digit names)"
    for shift in range(1, 26):
        if _compact(caesar(secret, shift)) in compact_text:
            return f"Caesar shift {shift}" + (" (rot13)" if shift == 13 else "")
    for name, decoded in decoded_views(text).items():
        if _found_in(compact_secret, [_compact(decoded), spelled(decoded)], fuzzy):
            return name
    return None


def split_leak(texts: Iterable[str], secret: str) -> bool:
    """Is ``secret`` assembled from pieces (each at least MIN_PIECE characters) spread over ``texts``?"""
    compact_secret = _compact(secret)
    if len(compact_secret) < 2 * MIN_PIECE:
        return False
    corpus = [view for text in texts for view in (_compact(text), spelled(text))]
    position = 0
    while position < len(compact_secret):
        longest = max((end for end in range(position + MIN_PIECE, len(compact_secret) + 1)
                       if any(compact_secret[position:end] in view for view in corpus)), default=None)
        if longest is None:
            return False
        position = longest
    return True


@functools.lru_cache(maxsize=1)
def _local_moderation_head() -> LinearHead:
    return load_head(MODERATION_FILE)


def local_moderation(text: str) -> list[str]:
    """The local moderation classifier (MiniLM + logistic regression, course data): flagged categories, or []."""
    head = _local_moderation_head()
    embedding = embed([normalise(text)])
    probability = float(head.probability(embedding)[0])
    if probability < head.threshold:
        return []
    centroids = head.info["category_centroids"]
    names = list(centroids)
    similarity = embedding[0] @ np.asarray([centroids[name] for name in names]).T
    return [f"{names[int(np.argmax(similarity))]} (p={probability:.2f})"]


def openai_moderation(client, model: str = OPENAI_MODERATION_MODEL) -> Callable[[str], list[str]]:
    """OpenAI's moderation endpoint as a ``moderation=`` function for :func:`check_output`.

    ``client``: an ``openai.OpenAI`` client with a key, e.g. ``helpers.llm.openai_client(local=False)``."""

    def moderate(text: str) -> list[str]:
        result = client.moderations.create(model=model, input=text).results[0]
        if not result.flagged:
            return []
        return [name for name, flagged in result.categories.model_dump(by_alias=True).items() if flagged]

    return moderate


def check_output(text, secrets: str | Iterable[str] = (), *, earlier_turns: Iterable[str] = (),
                 allowed_domains: Iterable[str] | None = None,
                 moderation: str | Callable[[str], list[str]] | None = "local") -> Verdict:
    """Is the model's answer safe to show? Looks for each secret in any form, then links, then runs moderation.

    ``secrets``: one string or several (API keys, canaries, personal data). ``earlier_turns``: the assistant's
    earlier answers in the conversation (a secret split across turns is caught). ``allowed_domains``: the
    domains links may point to (``None``: links are not checked). ``moderation``: ``"local"`` (the course's
    MiniLM classifier), a function ``text -> [flagged categories]`` such as :func:`openai_moderation`, or ``None``.
    Reasons never contain the secret itself.
    """
    try:
        text = as_text(text)
    except UnicodeDecodeError as error:
        return undecodable(text, error)
    secrets = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    turns = [as_text(turn) for turn in earlier_turns] + [text]
    reasons = []
    for index, secret in enumerate(secrets, start=1):
        secret = as_text(secret)
        form = leak_form(text, secret) or ("split across pieces or turns" if split_leak(turns, secret) else None)
        if form:
            reasons.append(f"secret: secret #{index} appears in the output ({form})")
    if allowed_domains is not None:
        reasons += link_reasons(text, allowed_domains)
    if text.strip() and moderation is not None:
        moderate = local_moderation if moderation == "local" else moderation
        if not callable(moderate):
            raise ValueError("moderation must be 'local', None, or a function text -> list of flagged categories.")
        reasons += [f"moderation: {category}" for category in moderate(text)]
    return Verdict(not reasons, reasons)
