"""helpers.evaluation: the shipped classifier, class entropy and FID."""

import math

import pytest
import torch

from helpers.data import digits
from helpers.evaluation import DigitsClassifier, accuracy, class_entropy, classify, fid, load_digits_classifier


@pytest.fixture(scope="module")
def classifier():
    return load_digits_classifier()


def test_shipped_classifier_is_accurate(classifier):
    test_images, test_labels = digits(16, "test")
    assert accuracy(classifier, test_images, test_labels) >= 0.97
    # other sizes are resized to 16x16 first
    images_8, labels_8 = digits(8, "test")
    assert (classify(images_8, classifier) == labels_8).float().mean() >= 0.9


def test_missing_checkpoint_says_how_to_rebuild(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        load_digits_classifier(tmp_path / "nothing.pt")


def test_class_entropy_bounds():
    assert class_entropy(torch.arange(10).repeat(5)) == pytest.approx(math.log2(10))
    assert class_entropy(torch.full((50,), 3)) == 0.0
    assert class_entropy(torch.tensor([0, 1])) == pytest.approx(1.0)


def test_fid_orders_real_above_noise(classifier):
    train_images, _ = digits(16, "train")
    test_images, _ = digits(16, "test")
    floor = fid(test_images, train_images, classifier=classifier)
    noise = fid(torch.rand(360, 1, 16, 16) * 2 - 1, train_images, classifier=classifier)
    assert 0 < floor < 20 < noise
    assert fid(train_images, train_images, classifier=classifier) == pytest.approx(0, abs=1e-2)


def test_fid_needs_images():
    with pytest.raises(ValueError, match="at least 2"):
        fid(torch.zeros(1, 1, 16, 16), torch.zeros(5, 1, 16, 16))


class CountingClassifier(DigitsClassifier):
    """The shipped classifier, counting the images whose features it computes."""

    def __init__(self, source: DigitsClassifier):
        super().__init__()
        self.load_state_dict(source.state_dict())
        self.eval()
        self.embedded = 0

    def features(self, images):
        self.embedded += len(images)
        return super().features(images)


def test_fid_embeds_the_reference_set_once(classifier):
    """The reference statistics are cached per reference tensor: later FIDs embed only the fakes."""
    counting = CountingClassifier(classifier)
    reference, _ = digits(16, "train")
    fake_a = torch.rand(50, 1, 16, 16) * 2 - 1
    fake_b, _ = digits(16, "test")
    first = fid(fake_a, reference, classifier=counting)
    embedded_once = counting.embedded
    assert embedded_once >= len(reference) + len(fake_a)
    second = fid(fake_b, reference, classifier=counting)
    assert counting.embedded - embedded_once == len(fake_b)  # the reference was not embedded again
    # the same values as from scratch: a copy of the reference is a new tensor, embedded anew
    assert fid(fake_a, reference.clone(), classifier=counting) == pytest.approx(first, rel=1e-9)
    assert fid(fake_b, reference.clone(), classifier=counting) == pytest.approx(second, rel=1e-9)
    assert second < first  # real test digits are closer to the reference than noise
    # an in-place change to the reference invalidates its cached statistics
    before = counting.embedded
    reference.mul_(1.0)
    fid(fake_b, reference, classifier=counting)
    assert counting.embedded - before == len(reference) + len(fake_b)


def test_class_entropy_interval_brackets_the_estimate_and_separates_only_real_differences():
    from helpers.evaluation import class_entropy, class_entropy_interval

    balanced = torch.randint(10, (360,), generator=torch.Generator().manual_seed(0))  # 360 labels, ~3.3 bits
    skewed = torch.cat([torch.zeros(250, dtype=torch.long), torch.arange(10).repeat(11)])
    low, high = class_entropy_interval(balanced)
    assert low <= class_entropy(balanced) <= high
    skewed_low, skewed_high = class_entropy_interval(skewed)
    assert skewed_high < low  # 1.9 vs 3.3 bits on 360 labels: the intervals separate
    half_low, half_high = class_entropy_interval(balanced[::2])
    assert half_low < high and low < half_high  # the same distribution: the intervals overlap


def test_fid_names_its_features():
    with pytest.raises(ValueError, match="features must be one of"):
        fid(torch.zeros(4, 1, 16, 16), torch.zeros(5, 1, 16, 16), features="small")


def test_classify_loads_the_shipped_classifier_once(monkeypatch):
    import helpers.evaluation as evaluation

    loads = []
    monkeypatch.setattr(evaluation, "load_digits_classifier", lambda: loads.append(1) or DigitsClassifier().eval())
    evaluation.shipped_classifier.cache_clear()
    try:
        images = torch.zeros(3, 1, 16, 16)
        classify(images), classify(images)
        assert len(loads) == 1
    finally:
        evaluation.shipped_classifier.cache_clear()
