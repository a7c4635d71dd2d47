"""Input checks of chapter 06's guard: size, language, rules and the learned detector on every view and window.

    verdicts = check_inputs(texts)              # one batch through the encoder for all texts, views and windows
    verdict = check_document(retrieved_text, allowed_domains=("acmebooks.example",))
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from helpers.guard_links import link_reasons
from helpers.guard_model import LinearHead, embed, encoder_form, load_head
from helpers.guard_normalise import as_text, input_views, windows

MAX_CHARS = 4000  # longer inputs are refused outright (cost, context stuffing), never checked in part
# what the detector was trained on (English, and attacks and questions of six more in data/safety/*_train.jsonl);
# text in another language goes to human review (see check_input)
LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl")
LANGUAGE_MIN_LETTERS = 20  # shorter texts are too short to identify their language reliably
LANGUAGE_MIN_PROBABILITY = 0.9


@dataclass(frozen=True)
class Verdict:
    """The result of a check. ``reasons`` say why it was blocked, each starting with its layer's name."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0  # highest probability from a learned classifier (0.0 when none ran)
    views: dict[str, str] = field(default_factory=dict, repr=False)  # input checks: the normalised texts checked

    @property
    def layers(self) -> set[str]:
        """The layers that blocked: {'encoding', 'length', 'language', 'rule', 'detector', 'document', 'link',
        'secret', 'moderation'}."""
        return {reason.split(":", 1)[0] for reason in self.reasons}


def undecodable(value, error: UnicodeDecodeError) -> Verdict:
    return Verdict(False, [
        f"encoding: not valid UTF-8 (byte 0x{bytes(value)[error.start]:02x} at position {error.start}); "
        "decode it yourself first, e.g. data.decode('utf-8', errors='replace'), and check the text"
    ])


# --------------------------------------------------------------------------- language


@functools.lru_cache(maxsize=1)
def _language_identifier():
    """py3langid's model (shipped in the package, offline), with probabilities normalised over its 97 languages."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of ``text``'s language; ('und', 0.0) when it has too few letters to tell."""
    if sum(character.isalpha() for character in text) < LANGUAGE_MIN_LETTERS:
        return "und", 0.0
    code, probability = _language_identifier().classify(text)
    return code, float(probability)


def language_reasons(pieces: Iterable[str], languages: Iterable[str]) -> list[str]:
    """The policy for languages the detector was not trained for: refuse with a reason, for a human to review."""
    for piece in pieces:
        code, probability = language(piece)
        if code not in languages and code != "und" and probability >= LANGUAGE_MIN_PROBABILITY:
            return [f"language: written in '{code}' (p={probability:.2f}); the detector only reads "
                    f"{', '.join(languages)}: sent to a human reviewer instead of the model"]
    return []


# --------------------------------------------------------------------------- rules

VERBS_IGNORE = r"(?:ignore|disregard|forget|override|skip|drop|discard|abandon|bypass|cancel|set aside|pay no attention to|never mind)"
NOT_ABOUT_SOMETHING_ELSE = r"(?!\s+(?:of|for|in|on|at|about)\b)"  # "forget the rules of chess" is not an attack
# the override rule in the six other languages the detector reads (LANGUAGES): a verb of ignoring or forgetting
# (English "ignore", "ignored", "ignoring" are left to the rule above), then a word for instructions, rules or
# configuration, not followed by "of the ..." in the forms that mostly mean something else ("les règles du jeu" is
# no attack; "les règles de la boutique" is one, so "de" itself is not excluded)
VERBS_IGNORE_OTHER = (r"(?:ignor(?!e[ds]?\b|ing\b)\w*|ignore(?=\s+(?:les|la|le|tes|toutes|tous|ces|las|los|as|os)\b)|"
                      r"oublie\w*|fais abstraction|vergiss\w*|vergessen|missachte\w*|olvid\w*|no hagas caso|"
                      r"dimentic\w*|esquec\w*|esqueç\w*|desconsider\w*|negeer\w*|vergeet|vergeten)")
RULE_WORDS_OTHER = (r"(?:instructions?|consignes?|règles|directives|configuration|anweisungen|regeln|vorgaben|"
                    r"richtlinien|konfiguration|befehle|instrucciones|reglas|normas|indicaciones|directrices|"
                    r"configuración|istruzioni|regole|indicazioni|direttive|configurazione|instruções|regras|"
                    r"indicações|diretrizes|configuração|instructies|regels|aanwijzingen|richtlijnen|configuratie)")
NOT_ABOUT_SOMETHING_ELSE_OTHER = r"(?!\s+(?:of|for|in|on|at|about|du|del|della|dello|dei|van|von|für|pour|para|per)\b)"
RULES = {
    "override previous instructions": re.compile(
        VERBS_IGNORE + r"\b[^.?!\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|original|initial|all|any|every|"
        r"your|the|those|these|system|developer'?s?)\b[^.?!\n]{0,25}?\b(?:instructions?|directions?|directives?|rules|"
        r"prompts?|guidelines|guidance|constraints|programming|polic(?:y|ies))\b" + NOT_ABOUT_SOMETHING_ELSE, re.I),
    "extract the hidden prompt": re.compile(
        r"\b(?:print|reveal|show|repeat|output|display|quote|paste|dump|echo|copy|reproduce|return|list|leak)\b"
        r"[^.?!\n]{0,40}?\b(?:system prompt|system message|hidden (?:instructions?|prompt|preamble|message|variables)|"
        r"initial (?:prompt|instructions?)|pre-?prompt|developer message|setup message|configuration prompt|"
        r"your (?:instructions|prompt|configuration)|(?:text|words|everything) above|context window)\b", re.I),
    "fake system or admin message": re.compile(
        r"<\|?\s*(?:im_start|system|endoftext)\s*\|?>|</?\s*system\s*>|\[\s*(?:system|admin)[^\]]{0,30}\]|"
        r"\b(?:admin|administrator|system|developer) (?:override|notice|update|message)\b|\bbegin admin\b", re.I),
    "jailbreak persona": re.compile(
        r"\b(?:do anything now|jailbreak mode|jailbroken|god mode|unrestricted mode|unfiltered (?:ai|mode|assistant)|"
        r"no ethical guidelines|(?:has|have|with) no (?:rules|restrictions|limits|filters))\b", re.I),
    "override previous instructions (in another language)": re.compile(
        r"\b" + VERBS_IGNORE_OTHER + r"\b[^.?!\n]{0,50}?\b" + RULE_WORDS_OTHER + r"\b" + NOT_ABOUT_SOMETHING_ELSE_OTHER,
        re.I),
}

# Retrieved documents are data: sentences that address the assistant, redirect users or ask for data are not.
DOCUMENT_RULES = {
    "instruction addressed to the assistant": re.compile(
        r"\b(?:assistants?|AI|chat ?bots?|bots?|language models?|LLMs?|agents?)\b[^.!?\n]{0,30}?\b(?:must|should|shall|"
        r"needs? to|has to|have to|is to|are to|will now|is (?:now )?required to)\b|(?:^|[.!?]\s+)(?:assistant|AI)\s*[:,]",
        re.I),
    "sends users elsewhere": re.compile(
        r"\b(?:send|direct|redirect|refer|point|forward|tell|ask)\s+(?:all\s+|every\s+)?(?:users|customers|readers|"
        r"people|them|buyers|shoppers|visitors|anyone)\b[^.!?\n]{0,30}?\b(?:to|towards)\b", re.I),
    "asks for data": re.compile(
        r"\b(?:include|add|append|mention|reveal|share|send|give|forward|collect|ask for)\b[^.!?\n]{0,40}?\b(?:access "
        r"codes?|passwords?|api keys?|credentials|secrets?|tokens?|card numbers?|card details|system prompt)\b", re.I),
}


def rule_hits(views: dict[str, str], rules: dict[str, re.Pattern] = RULES) -> list[str]:
    hits = []
    for rule, pattern in rules.items():
        for name, view in views.items():
            if pattern.search(view):
                hits.append(f"rule: {rule} (view: {name})")
                break
    return hits


# --------------------------------------------------------------------------- the checks


def check_input(text, *, max_chars: int = MAX_CHARS, detector: LinearHead | bool = True,
                threshold: float | None = None, languages: Iterable[str] | None = LANGUAGES) -> Verdict:
    """Is ``text`` safe to send to the model? Returns a :class:`Verdict`.

    ``detector``: ``True`` uses the course's trained head, ``False`` only the rules, or pass your
    own :class:`LinearHead`. ``threshold`` overrides the head's own. ``languages``: the languages the
    detector reads; text in another (by py3langid) is refused with a reason, for human review
    (``None`` turns the policy off).
    """
    return check_inputs([text], max_chars=max_chars, detector=detector, threshold=threshold, languages=languages)[0]


def check_inputs(texts: Iterable, *, max_chars: int = MAX_CHARS, detector: LinearHead | bool = True,
                 threshold: float | None = None, languages: Iterable[str] | None = LANGUAGES) -> list[Verdict]:
    """:func:`check_input` for many texts: every view of every text, cut into sentences and token windows, goes
    through the encoder in one batched call. A piece is scored once (the same piece in two views, once), and a text
    that the length, language or rule layers already block skips the detector: its score cannot change the verdict
    (its ``score`` stays 0.0)."""
    verdicts: list[Verdict | None] = []
    pending = []  # (position, views, pieces to score as (view name, window text), reasons so far)
    for text in texts:
        try:
            text = as_text(text)
        except UnicodeDecodeError as error:
            verdicts.append(undecodable(text, error))
            continue
        if not text.strip():
            verdicts.append(Verdict(True))
        elif len(text) > max_chars:
            verdicts.append(Verdict(False, [f"length: {len(text):,} characters, over the limit of {max_chars:,}; "
                                            "shorten it or split it, and check each part (nothing was checked)"]))
        else:
            views = input_views(text)
            pieces = {}  # window text as the encoder reads it (encoder_form) -> (view name, window text)
            for name, view in views.items():
                for window in windows(view):
                    pieces.setdefault(encoder_form(window), (name, window))
            pieces = list(pieces.values())
            reasons = language_reasons([window for name, window in pieces if name == "text"],
                                       languages) if languages is not None else []
            reasons += rule_hits(views)
            pending.append((len(verdicts), views, [] if reasons else pieces, reasons))
            verdicts.append(None)
    head = (load_head() if detector is True else detector) if detector else None
    if head is not None and pending:
        limit = head.threshold if threshold is None else threshold
        probabilities = head.probability(embed([window for _, _, pieces, _ in pending for _, window in pieces]))
    start = 0
    for position, views, pieces, reasons in pending:
        score = 0.0
        if head is not None and pieces:
            scores = probabilities[start:start + len(pieces)]
            start += len(pieces)
            best = int(np.argmax(scores))
            score = float(scores[best])
            if score >= limit:
                name, window = pieces[best]
                where = name if window == views[name] else f"{name}, the piece {window[:40]!r}"
                reasons = reasons + [f"detector: attack probability {score:.2f} >= {limit:.2f} (view: {where})"]
        verdicts[position] = Verdict(not reasons, reasons, score, views)
    return verdicts


def check_document(text, *, allowed_domains: Iterable[str] = (), **options) -> Verdict:
    """A retrieved document (indirect injection): :func:`check_input`, plus sentences that address the assistant,
    send users elsewhere or ask for data, and links to domains outside ``allowed_domains``."""
    verdict = check_input(text, **options)
    if "encoding" in verdict.layers or "length" in verdict.layers:
        return verdict
    reasons = [reason.replace("rule:", "document:", 1) for reason in rule_hits(verdict.views, DOCUMENT_RULES)]
    reasons += link_reasons(as_text(text), allowed_domains)
    return Verdict(verdict.allowed and not reasons, verdict.reasons + reasons, verdict.score, verdict.views)
