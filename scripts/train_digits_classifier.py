"""Train the course's digits classifier (features for FID, a judge of generated digits).

    python scripts/train_digits_classifier.py      # or: make checkpoints

Writes data/digits_classifier.pt (about 100 KB) with its test accuracy.
Deterministic on the CPU: same seed, same weights.
"""

import time

import torch

from helpers.evaluation import CLASSIFIER_PATH, train_digits_classifier


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    model, test_accuracy = train_digits_classifier()
    assert test_accuracy >= 0.97, f"test accuracy {test_accuracy:.3f} is below 0.97"
    torch.save({"state_dict": model.state_dict(), "test_accuracy": test_accuracy,
                "command": "python scripts/train_digits_classifier.py"}, CLASSIFIER_PATH)
    print(f"test accuracy {test_accuracy:.4f} in {time.time() - start:.1f} s -> {CLASSIFIER_PATH}")


if __name__ == "__main__":
    main()
