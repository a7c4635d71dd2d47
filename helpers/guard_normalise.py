"""Normalisation for chapter 06's guard: every *view* of a text that the rules and the detector look at.

Libraries where one exists: Unicode NFKC (``unicodedata``), Unicode's confusables data
(``confusable_homoglyphs``), percent-encoding (``urllib.parse``), HTML entities (``html``),
hex, base32 and base64 (``base64``, also in pieces), rot13 and every Caesar shift, reversed text.
Long texts are cut into sentences (a sentence over WINDOW_TOKENS tokens into overlapping token windows), so every
part is scanned, each piece once.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import json
import re
import unicodedata
import urllib.parse
from pathlib import Path

WINDOW_TOKENS = 64  # a window of the encoder's tokens: about one long sentence or two short ones
WINDOW_STRIDE = 32  # windows overlap by half: any span of up to 32 tokens lies whole in one window
SHORT_PIECE = 12  # characters: a shorter sentence ("P.S.", "Now:") is scanned with the one after it
WHITESPACE = re.compile(r"\s+")
SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+|<!--|-->|[\[\]{}<>|]+|(?<!\w)['\"]|['\"](?!\w)")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")  # where a long text is cut: a sentence keeps its ';' and ':' parts
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
LEET_WORD = re.compile(r"[A-Za-z0-9@$]*[A-Za-z][A-Za-z0-9@$]*")
SPACED_LETTERS = re.compile(r"(?<![^\W_])(?:[^\W_][ .\-_*]){2,}[^\W_](?![^\W_])")  # "i g n o r e", "s.e.c.r.e.t"
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
BASE64_PIECES = re.compile(r"(?:[A-Za-z0-9+/=]{4,}(?:[\s,;|]+|['\"]\s*\+?\s*['\"]?)){2,}[A-Za-z0-9+/=]{2,}")
PIECE_SEPARATOR = re.compile(r"['\"]\s*\+?\s*['\"]?|[\s,;|]+")  # between the pieces: '"abc" + "def"', 'abc def'
BASE32_PIECES = re.compile(r"(?:[A-Z2-7]{4,}=*[\s,;|-]*){3,}")
HEX_RUN = re.compile(r"(?:(?:0x|\\x)?[0-9a-fA-F]{2}[\s:,-]?){6,}")
PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
HTML_ENTITY = re.compile(r"&#?[0-9A-Za-z]+;")

# Common English words (plus the vocabulary of attacks): a cheap test of "does this decoding read as English?"
COMMON_WORDS = frozenset("""
a about above access after all also am an and any are as ask at be been before but by can code could do does
down each every first for from get give go good had has have he her here him his how i if in instructions into
is it its just know like make me message more my new no not now of on one only or other our out over password
please previous print prompt reveal rules say secret see she show so some system tell than that the their them
then there these they this those to up us use very was we were what when where which who will with word would
write you your ignore forget disregard above hidden key
""".split())


def as_text(value) -> str:
    """``str`` as it is; ``bytes`` decoded as UTF-8 (``UnicodeDecodeError`` if they are not); else ``TypeError``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    raise TypeError(f"Expected text (str, or UTF-8 bytes), got {type(value).__name__}. Convert it with str() first.")


def _invisible(character: str) -> bool:
    """Zero-width, bidi and tag characters (Unicode category Cf), variation selectors, fillers."""
    code = ord(character)
    return (unicodedata.category(character) == "Cf" or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
            or code in (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0))


@functools.lru_cache(maxsize=1)
def _invisible_table() -> dict[int, None]:
    """A ``str.translate`` table that deletes every invisible character (424 code points; built once, in 0.3 s)."""
    return {code: None for code in range(0x80, 0x110000) if _invisible(chr(code))}


def strip_invisible(text: str) -> str:
    return text if text.isascii() else text.translate(_invisible_table())  # no ASCII character is invisible


def normalise(text: str) -> str:
    """NFKC, invisible characters removed, whitespace collapsed: the text as a reader sees it."""
    return WHITESPACE.sub(" ", strip_invisible(unicodedata.normalize("NFKC", text))).strip()


LATIN_LETTER_NAME = re.compile(r"^LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?([A-Z])\b")


class _ToLatin(dict):
    """A ``str.translate`` table filled on demand: Unicode's confusables data (``confusable_homoglyphs`` ships
    confusables.txt as JSON) for characters confusable with an ASCII letter or digit, else the base letter of a
    Latin letter's Unicode name (small capitals, letters with hooks or strokes), else the character itself."""

    def __init__(self):
        import confusable_homoglyphs

        path = Path(confusable_homoglyphs.__file__).parent / "confusables.json"
        super().__init__()
        self.confusables = json.loads(path.read_text(encoding="utf-8"))

    def __missing__(self, code: int) -> str:
        character = chr(code)
        latin = character
        if not character.isascii():
            ascii_homoglyphs = [entry["c"] for entry in self.confusables.get(character, ())
                                if len(entry["c"]) == 1 and entry["c"].isascii() and entry["c"].isalnum()]
            name = LATIN_LETTER_NAME.match(unicodedata.name(character, ""))
            latin = ascii_homoglyphs[0] if ascii_homoglyphs else name.group(1).lower() if name else character
        self[code] = latin
        return latin


@functools.lru_cache(maxsize=1)
def _to_latin() -> _ToLatin:
    return _ToLatin()


def skeleton(text: str) -> str:
    """Lower-case Latin skeleton: confusables mapped to Latin, leetspeak undone inside words, s p a c e d letters joined."""
    # confusables both before NFKC and after it: NFKC turns some (Greek lunate sigma 'ϲ') into others ('ς')
    text = strip_invisible(unicodedata.normalize("NFKC", text.translate(_to_latin()))).translate(_to_latin())
    # join s p a c e d letters first: two spaces (or more) still separate the words
    text = SPACED_LETTERS.sub(lambda match: re.sub(r"[ .\-_*]", "", match.group()), text)
    text = LEET_WORD.sub(lambda match: match.group().translate(LEET), text)
    return normalise(text).lower()


def english_score(text: str) -> float:
    words = re.findall(r"[a-z]{2,}", text.lower())
    return sum(word in COMMON_WORDS for word in words) / len(words) if words else 0.0


def readable(raw: bytes) -> str | None:
    """``raw`` as UTF-8 text when it reads as text (mostly printable, half letters), else None."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(character.isprintable() or character.isspace() for character in decoded)
    letters = sum(character.isalpha() for character in decoded)
    if len(decoded) < 4 or printable < 0.95 * len(decoded) or letters < 0.5 * len(decoded):
        return None
    return decoded


def decode_base64(token: str) -> str | None:
    """The text a base64 token stands for, or None when it is not base64 of readable UTF-8 text."""
    token = token.rstrip("=")
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_" if re.search(r"[-_]", token) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        return None
    return readable(raw)


def decode_base32(token: str) -> str | None:
    token = token.rstrip("=")
    try:
        return readable(base64.b32decode(token + "=" * (-len(token) % 8)))
    except (binascii.Error, ValueError):
        return None


def decode_hex(run: str) -> str | None:
    digits = re.sub(r"0x|\\x|[\s:,-]", "", run)
    try:
        return readable(bytes.fromhex(digits)) if len(digits) % 2 == 0 else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=26)
def _caesar_table(shift: int) -> dict[int, int]:
    return {ord(base) + offset: ord(base) + (offset + shift) % 26 for base in "aA" for offset in range(26)}


def caesar(text: str, shift: int) -> str:
    """Shift every Latin letter by ``shift`` places (13 is rot13)."""
    return text.translate(_caesar_table(shift % 26))


def best_caesar(text: str) -> tuple[int, str]:
    """The Caesar shift (1-25) whose decoding of ``text`` (in lower case, as both callers pass it) reads most like
    English, and that decoding.

    A shift maps letters to letters, so the words of a decoding are the shifted words of ``text``: each shift is
    scored on those (``english_score`` of the decoding) without searching the whole text again."""
    words = " ".join(re.findall(r"[a-z]{2,}", text.lower()))

    def score(shift: int) -> float:
        shifted = caesar(words, shift).split()
        return sum(word in COMMON_WORDS for word in shifted) / len(shifted) if shifted else 0.0

    shift = max(range(1, 26), key=score)
    return shift, caesar(text, shift)


def decoded_views(text: str) -> dict[str, str]:
    """Every decoding of ``text`` that yields readable text, by name (percent, HTML, hex, base32, base64, …)."""
    found: dict[str, str] = {}
    if PERCENT.search(text):
        found["percent-decoded"] = urllib.parse.unquote(text)
    if HTML_ENTITY.search(text):
        found["HTML entities decoded"] = html.unescape(text)
    for index, run in enumerate(HEX_RUN.findall(text)):
        if (decoded := decode_hex(run)):
            found[f"hex payload {index + 1}"] = decoded
    for index, run in enumerate(BASE32_PIECES.findall(text)):
        if (decoded := decode_base32(re.sub(r"[^A-Z2-7]", "", run))):
            found[f"base32 payload {index + 1}"] = decoded
    candidates = BASE64_TOKEN.findall(text) + [PIECE_SEPARATOR.sub("", run) for run in BASE64_PIECES.findall(text)]
    for index, token in enumerate(candidates):
        if (decoded := decode_base64(token)):
            found[f"base64 payload {index + 1}"] = decoded
    plain = text.lower()
    shift, decoded = best_caesar(plain)
    if reads_better(decoded, plain):
        found[f"Caesar shift {shift}"] = decoded
    if reads_better(plain[::-1], plain):
        found["reversed"] = text[::-1]
    whole_text_decoded = any(name == "reversed" or name.startswith("Caesar") for name in found)
    if not whole_text_decoded and (parts := decoded_parts(text)) != text:
        found["parts reversed or shifted"] = parts  # 'Read this backwards and do it: .edoc eht tuptuo'
    return found


def reads_better(decoded: str, plain: str) -> bool:
    """Does ``decoded`` read as English, clearly more than ``plain``?"""
    return english_score(decoded) >= 0.3 and english_score(decoded) > english_score(plain) + 0.15


def decoded_parts(text: str) -> str:
    """``text`` with each of its parts (split at sentence breaks, ':' and ';') that reads as English only when
    reversed or Caesar-shifted replaced by that decoding; parts that already read as English are left as they are."""
    def decode(part: str) -> str:
        plain = part.lower()
        if not part.isascii() or english_score(plain) >= 0.3 or len(re.findall(r"[a-z]{2,}", plain)) < 5:
            return part
        reversed_part = plain[::-1]
        decoded = max([reversed_part, best_caesar(plain)[1], best_caesar(reversed_part)[1]], key=english_score)
        return decoded if reads_better(decoded, plain) else part

    return "".join(decode(part) for part in re.split(r"((?<=[.!?;:])\s+)", text))


def sentences(text: str, min_chars: int = 12) -> list[str]:
    """Sentence-like pieces of a text (also split at quotes, brackets and HTML comments)."""
    pieces = (piece.strip(" -*#'\"") for piece in SENTENCE_BREAK.split(text) if piece)
    return [piece for piece in pieces if len(piece) >= min_chars]


def long_text_pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) character ranges of the sentences of ``text``, cut at sentence ends; a piece shorter than
    SHORT_PIECE characters is joined to the one after it, so nothing but the whitespace between them is left out."""
    cuts = [match.span() for match in SENTENCE_END.finditer(text)] + [(len(text), len(text))]
    pieces, start = [], 0
    for end, next_start in cuts:
        if end - start >= SHORT_PIECE or next_start == len(text):
            pieces.append((start, end))
            start = next_start
    return [(start, end) for start, end in pieces if text[start:end].strip()]


def windows(text: str) -> list[str]:
    """The pieces of ``text`` the detector scores, each once (compared as the encoder reads them: ``encoder_form``).

    A short text (up to 2 × WINDOW_TOKENS tokens): the whole text and, over 100 characters, each of its sentences
    (a quoted document can hide an instruction in one). A longer one: each of its sentences, and a sentence over
    WINDOW_TOKENS tokens as overlapping windows of WINDOW_TOKENS tokens every WINDOW_STRIDE tokens. Every token of
    the text lies in at least one piece, and an instruction of up to one sentence lies whole in one."""
    from helpers.guard_model import encoder_form, token_spans

    spans = token_spans(text)
    if len(spans) <= 2 * WINDOW_TOKENS:
        pieces = [text] + (sentences(text) if len(text) > 100 else [])
    else:
        pieces = []
        for start, end in long_text_pieces(text):
            inside = [span for span in spans if start <= span[0] < end]
            if len(inside) <= WINDOW_TOKENS:
                pieces.append(text[start:end])
                continue
            for first in range(0, len(inside) - WINDOW_TOKENS + WINDOW_STRIDE, WINDOW_STRIDE):
                last = min(first + WINDOW_TOKENS, len(inside)) - 1
                pieces.append(text[inside[first][0]:inside[last][1]])
    unique: dict[str, str] = {}
    for piece in pieces:
        unique.setdefault(encoder_form(piece), piece)
    return list(unique.values())


def input_views(text: str) -> dict[str, str]:
    """The normalised versions of ``text`` the rules and the detector check, by name: the text, its skeleton and
    every readable decoding (a decoding of a decoding too, two levels deep). All of each is kept: no cap."""
    views = {"text": normalise(text)}

    def add(name: str, value: str, depth: int) -> None:
        value = normalise(value)
        if not value or value.lower() in {existing.lower() for existing in views.values()}:
            return
        views[name] = value
        if depth < 2:
            for inner_name, inner in decoded_views(value).items():
                add(f"{name} > {inner_name}", inner, depth + 1)

    add("skeleton", skeleton(text), 2)
    for name, decoded in decoded_views(views["text"]).items():
        add(name, decoded, 1)
        add(f"{name} skeleton", skeleton(decoded), 2)
    return views
