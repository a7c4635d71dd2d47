"""Train the long runs of chapter 01's GANs: data/gans/<name>.pt (small profile, 16x16 digits).

    python scripts/train_gans.py                          # all six (or: make checkpoints); prints each run's seconds
    python scripts/train_gans.py --only cgan --out /tmp/gans   # one run, somewhere else
    python scripts/train_gans.py --steps 200 --out /tmp/gans   # a quick try: every run 200 steps

"Train live, then load": the notebook trains each GAN for a short live run, then loads the long run of
the same model from data/gans/. Both come from ``helpers.gans``: this script only chooses the small
profile's settings (``helpers.gans.SMALL_PROFILE``), trains each run with ``train_long_run`` and saves it
with ``save_long_run``. Deterministic on the CPU with one thread: same code, same seed, same weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from helpers import gans
from helpers.data import digits
from helpers.evaluation import load_digits_classifier

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT_DIR = REPO_ROOT / "data" / "gans"
MAX_BYTES = 5 * 2**20


def parse_arguments(argv=None) -> argparse.Namespace:
    settings = gans.SMALL_PROFILE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="folder for <name>.pt (default: data/gans)")
    parser.add_argument("--only", nargs="+", choices=list(settings["steps"]), default=list(settings["steps"]),
                        metavar="NAME", help=f"train only these runs ({', '.join(settings['steps'])})")
    parser.add_argument("--steps", type=int, help="train every run for this many steps (not the shipped runs)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    arguments = parse_arguments(argv)
    settings = gans.SMALL_PROFILE
    torch.set_num_threads(1)  # the shipped files were made with one thread (more can change the last bits)
    images, labels = digits(settings["image_size"], "train")
    setup = gans.TrainingSetup(images, labels, reference=images[:settings["fid_reference_count"]],
                               judge=load_digits_classifier(), fid_count=settings["fid_count"],
                               eval_every=settings["eval_every"])
    steps = {name: arguments.steps or count for name, count in settings["steps"].items()}
    runs = gans.long_runs(steps, vanilla_lr=settings["vanilla_lr"], critic_steps=settings["critic_steps"])
    for name in arguments.only:
        start = time.time()
        generator, record = gans.train_long_run(runs[name], setup, seed=settings["seed"])
        path = arguments.out / f"{name}.pt"
        gans.save_long_run(path, generator, record)
        size = path.stat().st_size
        assert size < MAX_BYTES, f"{path} is {size / 2**20:.1f} MB (limit 5 MB)"
        best = f"best training FID {min(record['fids']):.1f} at step {record['best_step']}" if record["fids"] else \
            "no training FID (shorter than one evaluation interval)"
        print(f"{path}: {size / 2**20:.2f} MB, {record['steps']} steps, {best}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
