"""Train chapter 06's two small guard classifiers on the course's own labelled text.

    python scripts/train_guard.py      # or: make checkpoints

Writes data/safety/guard_detector.json (prompt-injection detector) and
data/safety/moderation_classifier.json (local output moderation): logistic-regression
heads on all-MiniLM-L6-v2 embeddings, ~10 KB each, trained on the TRAIN splits only.
Deterministic on the CPU (fixed folds, lbfgs): same data, same weights.
"""

import json
import time

import torch

from helpers.guard_model import DETECTOR_FILE, MODERATION_FILE
from helpers.guard_training import train_detector, train_moderation


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    for name, train, path, floor in (
        ("prompt-injection detector", train_detector, DETECTOR_FILE, 0.7),
        ("moderation classifier", train_moderation, MODERATION_FILE, 0.8),
    ):
        head = train()
        detection = head.info["out_of_fold_detection_rate"]
        false_positives = head.info["out_of_fold_false_positive_rate"]
        assert detection >= floor, f"{name}: out-of-fold detection rate {detection:.3f} is below {floor}"
        assert false_positives <= 0.1, f"{name}: out-of-fold false-positive rate {false_positives:.3f} is above 0.1"
        record = {**head.to_json(), "command": "python scripts/train_guard.py"}
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: out-of-fold detection {detection:.3f}, false positives "
              f"{false_positives:.3f}, C={head.info['C']}, threshold {head.threshold:.3f} -> {path}")
    print(f"done in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
