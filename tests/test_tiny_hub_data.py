"""scripts/tiny_hub/data.py: the MNIST stand-in and FID's Inception-v3 weights, where their loaders look."""

import math
import sys

import pytest
import torch

from conftest import REPO_ROOT
from helpers.config import tiny_hub_environment
from helpers.data import dataset_cache_dir

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from tiny_hub import data  # noqa: E402


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    environment = tiny_hub_environment(tmp_path_factory.mktemp("tiny-hub"))
    data.build(environment)
    return environment


def test_dataset_cache_dir_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert dataset_cache_dir("mnist") == tmp_path / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert dataset_cache_dir("mnist").parts[-2:] == (".cache", "mnist")
    assert dataset_cache_dir("mnist", {"XDG_CACHE_HOME": "/x"}) == dataset_cache_dir("mnist", {"XDG_CACHE_HOME": "/x"})


def test_torchvision_reads_the_mnist_stand_in_without_downloading(environment, monkeypatch):
    import torchvision

    def no_download(*args, **kwargs):
        raise AssertionError("torchvision tried to download MNIST")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_download)
    root = dataset_cache_dir("mnist", environment)
    for train, count in ((True, data.MNIST_COUNTS["train"]), (False, data.MNIST_COUNTS["t10k"])):
        dataset = torchvision.datasets.MNIST(root, train=train, download=True)
        assert dataset.data.shape == (count, 28, 28) and dataset.data.dtype == torch.uint8
        assert dataset.targets.shape == (count,) and set(dataset.targets.tolist()) == set(range(10))
        assert dataset.data[:, :2].max() == 0 and dataset.data.max() > 200  # black border, white strokes
        image, label = dataset[0]
        assert image.size == (28, 28) and 0 <= label <= 9


def test_fid_loads_the_random_inception_weights(environment, monkeypatch):
    from torchmetrics.image.fid import FrechetInceptionDistance

    monkeypatch.setenv("TORCH_HOME", environment["TORCH_HOME"])
    monkeypatch.setattr(torch.hub, "download_url_to_file",
                        lambda *args, **kwargs: pytest.fail("torch.hub tried to download the Inception weights"))
    metric = FrechetInceptionDistance(feature=2048, normalize=True)  # loads the file strictly: same keys and shapes
    metric.update(torch.rand(3, 3, 28, 28), real=True)
    metric.update(torch.rand(3, 3, 28, 28) * 0.5, real=False)
    assert math.isfinite(float(metric.compute()))
