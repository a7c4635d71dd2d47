"""Data the course ships offline: handwritten digits and real photographs.

Digits come from scikit-learn (1,797 real 8x8 scans, 10 classes), resized and
scaled to [-1, 1] as generative models expect. The train/test split is fixed
(1,437 / 360, stratified, seed 0) so every chapter measures on the same images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DIGITS_TEST_SIZE = 360
SPLIT_SEED = 0


def dataset_cache_dir(name: str, environment: Mapping[str, str] | None = None) -> Path:
    """Where the course caches the downloaded data set ``name``: ``$XDG_CACHE_HOME/name``, else ``~/.cache/name``.

    ``environment`` defaults to ``os.environ`` (on the tiny hub, ``helpers.setup()`` points
    ``$XDG_CACHE_HOME`` into it, and ``scripts/tiny_hub/data.py`` writes the stand-in files there)."""
    environment = os.environ if environment is None else environment
    return Path(environment.get("XDG_CACHE_HOME") or Path.home() / ".cache") / name


def digits(size: int = 16, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as ``(images, labels)``: images ``(N, 1, size, size)`` in [-1, 1], labels ``(N,)``.

    ``split`` is ``"train"`` (1,437 images), ``"test"`` (360) or ``"all"`` (1,797).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if size < 8:
        raise ValueError(f"size must be at least 8 (the scans are 8x8), not {size}")
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = (images.clamp(0, 1) * 2 - 1).contiguous()
    if split == "all":
        return images, labels
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_SIZE,
        stratify=bunch.target,
        random_state=SPLIT_SEED,
    )
    idx = torch.tensor(train_idx if split == "train" else test_idx)
    return images[idx], labels[idx]


def sample_photos() -> dict[str, np.ndarray]:
    """Real photographs shipped with scikit-learn and scikit-image, as RGB uint8 arrays.

    Keys: china, flower (scikit-learn); astronaut, chelsea (a cat), coffee (a cup),
    rocket, motorcycle (scikit-image).
    """
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = dict(zip(("china", "flower"), load_sample_images().images))
    photos["astronaut"] = skdata.astronaut()
    photos["chelsea"] = skdata.chelsea()
    photos["coffee"] = skdata.coffee()
    photos["rocket"] = skdata.rocket()
    photos["motorcycle"] = skdata.stereo_motorcycle()[0]
    return photos


def load_image(path: str | Path):
    """Open an image file as RGB PIL image, with a clear error for missing or corrupt files."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image at {path}: check the path (cwd is {Path.cwd()}).")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{path} is not a readable image ({error}). Use a PNG, JPEG, GIF or WebP file."
        ) from error
