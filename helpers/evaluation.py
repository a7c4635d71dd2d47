"""Measuring generated digits: a small digits classifier, its features for FID, class entropy.

Inception-v3 features (the usual FID) need a download and expect 299x299
photographs; for 16x16 digits the course uses a small CNN trained on the
digits themselves (``scripts/train_digits_classifier.py`` trains it, and
``data/digits_classifier.pt`` holds the result, ~100 KB). Its 64-d
penultimate layer feeds torchmetrics' ``FrechetInceptionDistance(feature=...)``
(the approach of fastai's course, part 2): ``fid(..., features="digits")``.
``features="inception"`` uses Inception-v3 as in the literature (the full profile).

Two cautions the chapters repeat: FID is biased upwards for small samples,
so only compare FIDs computed with the same sample sizes, next to the
*floor* (real test images vs real train images); and a classifier's
features reward class-correct, balanced samples more than pixel realism.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFIER_SIZE = 16
CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "data" / "digits_classifier.pt"


class DigitsClassifier(nn.Module):
    """A small CNN for 16x16 digits in [-1, 1]; other sizes are resized to 16x16 first."""

    num_features = 64  # torchmetrics reads this to size its FID statistics

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 16 -> 8
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8 -> 4
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, self.num_features), nn.ReLU(),
        )
        self.head = nn.Linear(self.num_features, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        images = images.float()
        if images.shape[-1] != CLASSIFIER_SIZE:
            images = F.interpolate(images, size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE),
                                   mode="bilinear", align_corners=False, antialias=True)
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class DigitsFeatures(nn.Module):
    """The classifier's 64-d features, shaped as torchmetrics' FID wants a feature extractor."""

    num_features = DigitsClassifier.num_features

    def __init__(self, classifier: DigitsClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images)


def train_digits_classifier(epochs: int = 40, seed: int = 0) -> tuple[DigitsClassifier, float]:
    """Train the classifier on the fixed train split (with 1-pixel shifts); return it and test accuracy."""
    from helpers.data import digits

    torch.manual_seed(seed)
    train_x, train_y = digits(CLASSIFIER_SIZE, "train")
    test_x, test_y = digits(CLASSIFIER_SIZE, "test")
    model = DigitsClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        for batch in order.split(64):
            shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
            images = torch.roll(train_x[batch], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(images), train_y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, accuracy(model, test_x, test_y)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (model(images).argmax(1) == labels).float().mean().item()


def load_digits_classifier(path: Path = CLASSIFIER_PATH) -> DigitsClassifier:
    """The course's trained digits classifier, in eval mode (run ``make checkpoints`` to rebuild)."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"{path} is missing. Rebuild it with `make checkpoints` "
            "(python scripts/train_digits_classifier.py, about 30 s)."
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = DigitsClassifier()
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


@functools.lru_cache(maxsize=1)
def shipped_classifier() -> DigitsClassifier:
    """The shipped classifier, loaded from disk once per process (the default of ``classify`` and ``fid``)."""
    return load_digits_classifier()


@torch.no_grad()
def classify(images: torch.Tensor, classifier: DigitsClassifier | None = None) -> torch.Tensor:
    """Predicted digit class of each image in [-1, 1], by ``classifier`` (default: the shipped one)."""
    classifier = classifier or shipped_classifier()
    return torch.cat([classifier(chunk.cpu()).argmax(1) for chunk in images.split(1000)])


def class_entropy(labels: torch.Tensor, num_classes: int = 10) -> float:
    """Entropy (in bits) of the class histogram: log2(10) ≈ 3.32 when balanced, 0 when collapsed."""
    counts = torch.bincount(labels.flatten().long(), minlength=num_classes).double()
    probs = counts / counts.sum()
    probs = probs[probs > 0]
    return float(-(probs * probs.log2()).sum()) + 0.0


def class_entropy_interval(labels: torch.Tensor, num_classes: int = 10, resamples: int = 2000,
                           confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval for ``class_entropy(labels)``: resample the labels with replacement."""
    labels = labels.flatten().long()
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(labels), (resamples, len(labels)), generator=generator)
    counts = torch.zeros(resamples, num_classes, dtype=torch.float64).scatter_add_(
        1, labels[picks], torch.ones(resamples, len(labels), dtype=torch.float64))
    probs = counts / len(labels)
    entropies = -(probs * torch.where(probs > 0, probs.log2(), 0.0)).sum(dim=1)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(entropies, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def _to_inception_input(images: torch.Tensor) -> torch.Tensor:
    images = (images.float().clamp(-1, 1) + 1) / 2  # [0, 1], as normalize=True expects
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


# The reference sets' statistics, embedded once per process: (reference, its version, features, classifier, device,
# batch size) -> a metric that keeps them. A few entries: one Inception-v3 metric holds ~95 MB of weights.
_REFERENCE_METRICS: list[tuple[tuple, object]] = []
_REFERENCE_METRICS_KEPT = 4
# Images per forward pass: Inception-v3 resizes each to 299x299 and needs ~12 MB of activations per image
# (fp32), so 100 at a time keeps it near 1.2 GiB (a T4 has 15); the digits CNN takes 500 in a few MB.
BATCH_SIZES = {"digits": 500, "inception": 100}
FEATURES = tuple(BATCH_SIZES)


@torch.no_grad()
def reference_fid_metric(real: torch.Tensor, features: str = "digits", classifier: DigitsClassifier | None = None,
                         batch_size: int | None = None, device: str = "cpu"):
    """A torchmetrics ``FrechetInceptionDistance`` that has already embedded ``real`` (and keeps it on ``reset()``).

    Cached by the identity of ``real`` (and of ``classifier``): the second FID against the same reference
    tensor embeds only the generated side, which matters for Inception-v3 (10,000 MNIST images at 299x299).
    An in-place change to ``real`` (its version counter) embeds it again; a new tensor is a new reference."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, not {features!r}")
    uses_classifier = features == "digits"
    batch_size = batch_size or BATCH_SIZES[features]
    if uses_classifier:
        classifier = classifier or shipped_classifier()
    key = (real._version, features, classifier if uses_classifier else None, str(device), batch_size)
    for (cached_real, cached_key), metric in _REFERENCE_METRICS:
        if cached_real is real and cached_key == key:  # modules compare by identity
            return metric
    if uses_classifier:
        metric = FrechetInceptionDistance(feature=DigitsFeatures(classifier), reset_real_features=False)
    else:
        metric = FrechetInceptionDistance(feature=2048, normalize=True, reset_real_features=False)
    metric = metric.to(device)
    for chunk in real.split(batch_size):
        metric.update(_prepare(chunk, features).to(device), real=True)
    _REFERENCE_METRICS.insert(0, ((real, key), metric))  # holds `real`, so its id is never reused meanwhile
    del _REFERENCE_METRICS[_REFERENCE_METRICS_KEPT:]
    return metric


def _prepare(images: torch.Tensor, features: str) -> torch.Tensor:
    """Images in [-1, 1] as the features want them: unchanged for the digits classifier, [0, 1] RGB for Inception."""
    return images.float() if features == "digits" else _to_inception_input(images)


@torch.no_grad()
def fid(fake: torch.Tensor, real: torch.Tensor, features: str = "digits",
        classifier: DigitsClassifier | None = None, batch_size: int | None = None,
        device: str = "cpu") -> float:
    """FID between two image sets in [-1, 1] with torchmetrics' ``FrechetInceptionDistance``.

    ``features="digits"`` uses the digits classifier's 64-d features (``classifier``, by default the
    shipped one); ``"inception"`` uses Inception-v3 (2048-d; downloads its weights once).
    ``real`` is the reference set: its statistics are computed once per process and reused
    (``reference_fid_metric``), so pass the same tensor each time; only ``fake`` is embedded anew.
    ``batch_size`` (images per forward pass) defaults to ``BATCH_SIZES[features]``.
    Compare FIDs only when they were computed with the same sample sizes.
    """
    if len(fake) < 2 or len(real) < 2:
        raise ValueError("FID needs at least 2 images on each side (and hundreds to mean much).")
    metric = reference_fid_metric(real, features, classifier, batch_size, device)
    batch_size = batch_size or BATCH_SIZES[features]
    metric.reset()  # forgets the previous fakes, keeps the reference statistics
    for chunk in fake.split(batch_size):
        metric.update(_prepare(chunk, features).to(device), real=False)
    value = float(metric.compute())
    if not math.isfinite(value):
        raise FloatingPointError("FID is not finite: are the generated images all NaN or constant?")
    return value
