"""helpers.data: the digits split and the shipped photographs."""

import numpy as np
import pytest
import torch

from helpers.data import digits, load_image, sample_photos


def test_digits_shapes_range_and_split():
    train_images, train_labels = digits(16, "train")
    test_images, test_labels = digits(16, "test")
    assert train_images.shape == (1437, 1, 16, 16) and test_images.shape == (360, 1, 16, 16)
    assert train_images.dtype == torch.float32 and train_labels.dtype == torch.long
    assert train_images.min() >= -1 and train_images.max() <= 1
    assert set(test_labels.tolist()) == set(range(10))


def test_digits_split_is_fixed_and_disjoint():
    all_images, _ = digits(8, "all")
    train_images, _ = digits(8, "train")
    test_images, _ = digits(8, "test")
    assert torch.equal(train_images, digits(8, "train")[0])
    rows = {tuple(image.flatten().tolist()) for image in train_images}
    overlap = sum(tuple(image.flatten().tolist()) in rows for image in test_images)
    assert overlap <= 5  # a few scans are pixel-identical duplicates in the source data
    assert len(all_images) == 1797


@pytest.mark.parametrize("kwargs, message", [({"split": "validation"}, "split"), ({"size": 4}, "at least 8")])
def test_digits_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        digits(**kwargs)


def test_sample_photos_are_rgb_uint8():
    photos = sample_photos()
    assert {"china", "flower", "astronaut", "chelsea", "coffee", "rocket", "motorcycle"} <= set(photos)
    for photo in photos.values():
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3


def test_load_image_good_missing_and_corrupt(tmp_path):
    from PIL import Image

    good = tmp_path / "cup.png"
    Image.fromarray(sample_photos()["coffee"]).save(good)
    assert load_image(good).mode == "RGB"
    with pytest.raises(FileNotFoundError, match="No image at"):
        load_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(corrupt)
