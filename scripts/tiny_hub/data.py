"""Tiny-hub builder, family ``data``: MNIST and FID's Inception-v3 weights, where their loaders look.

- **MNIST** (chapter 01's full profile): ``torchvision.datasets.MNIST(root, train=..., download=True)``
  finds its four IDX files in ``<root>/MNIST/raw/`` and downloads nothing, with ``root =
  helpers.data.dataset_cache_dir("mnist")`` (under ``$XDG_CACHE_HOME``). The images are NOT MNIST:
  they stand in for it, made from the course's own digits (scikit-learn's 1,797 real 8x8 scans,
  upscaled to 20x20 and centred in 28x28 as MNIST's are, uint8), 2,000 train / 500 test (the fixed
  train / test split of ``helpers.data.digits``, topped up with copies shifted by a pixel).
- **Inception-v3** (FID in the full profile): torchmetrics' ``FrechetInceptionDistance(feature=2048)``
  builds torch-fidelity's ``FeatureExtractorInceptionV3``, which loads ``helpers.models.INCEPTION_FID_WEIGHTS``
  through ``torch.hub.load_state_dict_from_url``: torch's hub cache holds it as
  ``$TORCH_HOME/hub/checkpoints/<basename>``. We write there a state dict with exactly that module's
  keys and shapes, of random floats (~95 MB: the architecture is fixed), so its FIDs are noise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.models import INCEPTION_FID_WEIGHTS

MNIST_COUNTS = {"train": 2_000, "t10k": 500}  # torchvision's file prefixes: train / test
MNIST_SIZE, DIGIT_BOX = 28, 20  # MNIST centres each digit's 20x20 box in a 28x28 image
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes


def build(environment: dict[str, str]) -> None:
    """Write this family's files into the caches that ``environment`` names."""
    from helpers.data import dataset_cache_dir

    write_mnist_stand_in(dataset_cache_dir("mnist", environment) / "MNIST" / "raw")
    write_inception_weights(Path(environment["TORCH_HOME"]) / "hub" / "checkpoints")


# ---------------------------------------------------------------- MNIST stand-in
def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (MNIST's format): magic 0x0000 <type> <ndim>, each dimension as big-endian int32, the bytes."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array).tobytes())


def mnist_stand_in(split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` digits of the course's ``split`` as MNIST-like ``(count, 28, 28)`` uint8 images and labels."""
    from helpers.data import digits

    images, labels = digits(DIGIT_BOX, split)  # (N, 1, 20, 20) in [-1, 1]
    pad = (MNIST_SIZE - DIGIT_BOX) // 2
    images = F.pad(images, (pad, pad, pad, pad), value=-1.0)  # black border, as MNIST's
    generator = torch.Generator().manual_seed(0)
    extra = count - len(images)
    if extra > 0:  # top up with copies shifted by a pixel (rolled within the black border)
        chosen = torch.randperm(len(images), generator=generator)[:extra]
        shifts = torch.randint(-1, 2, (extra, 2), generator=generator)
        copies = torch.stack([torch.roll(images[i], tuple(s.tolist()), dims=(1, 2)) for i, s in zip(chosen, shifts)])
        images, labels = torch.cat([images, copies]), torch.cat([labels, labels[chosen]])
    images, labels = images[:count], labels[:count]
    pixels = ((images[:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return pixels.numpy(), labels.to(torch.uint8).numpy()


def write_mnist_stand_in(raw: Path) -> None:
    """The four files ``torchvision.datasets.MNIST`` reads: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``."""
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, count in MNIST_COUNTS.items():
        images, labels = mnist_stand_in("train" if prefix == "train" else "test", count)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)


# ---------------------------------------------------------------- FID's Inception-v3
def inception_state_dict() -> dict[str, torch.Tensor]:
    """Random tensors with the keys, shapes and dtypes of torch-fidelity's ``FeatureExtractorInceptionV3``.

    The module is built on the meta device (no memory, no slow initialisation; its own weights file is
    never read), then each tensor is filled with small random numbers: weights ~ N(0, 2/fan_in) (He)
    so that activations stay finite, batch-norm statistics 0 / 1."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, *args, **kwargs):  # the (empty) file read below: nothing to load
            return None

    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.pth"
        torch.save({}, empty)
        with torch.device("meta"):
            skeleton = Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, meta in skeleton.state_dict().items():
        if name.endswith("running_var"):
            tensor = torch.ones(meta.shape, dtype=meta.dtype)
        elif name.endswith(("running_mean", "bias")) or meta.dtype == torch.long:
            tensor = torch.zeros(meta.shape, dtype=meta.dtype)
        elif meta.dim() > 1:  # conv / linear weights
            tensor = torch.randn(meta.shape, generator=generator).mul_((2 / meta[0].numel()) ** 0.5).to(meta.dtype)
        else:  # batch-norm scale
            tensor = torch.ones(meta.shape, dtype=meta.dtype)
        state[name] = tensor
    return state


def write_inception_weights(checkpoints: Path) -> Path:
    """``checkpoints/<basename of INCEPTION_FID_WEIGHTS>``: where ``torch.hub.load_state_dict_from_url`` finds it."""
    checkpoints.mkdir(parents=True, exist_ok=True)
    path = checkpoints / Path(INCEPTION_FID_WEIGHTS).name
    torch.save(inception_state_dict(), path)
    return path
