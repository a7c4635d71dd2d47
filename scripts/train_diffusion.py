"""Train chapter 02's two diffusion models on 16x16 digits ("train live, then load").

    python scripts/train_diffusion.py                       # both models (or: make checkpoints)
    python scripts/train_diffusion.py --which unconditional # only one

A command-line wrapper over ``helpers.diffusion`` (the models, the training loop and the sampler
live there, once; the notebook runs and shows the same code). Writes, each about 2 MB (fp16
weights; the metrics are measured on them):

- ``data/ddpm_digits.pt``: the unconditional DDPM (4,000 steps). Metric: FID of 360 DDIM-20
  samples against the 1,437 training digits (digits-classifier features), checked <= ``MAX_FID_DDIM_20``.
- ``data/cfg_digits.pt``: the class-conditional model for classifier-free guidance (3,000 steps,
  10 % label dropout). Metric: class accuracy of 200 DDIM-20 samples at guidance scale 2, checked
  >= ``MIN_CFG_ACCURACY``.

Why two models rather than one conditional model whose null label gives the unconditional
branch: the chapter's DDPM section wraps its model in diffusers' ``DDPMPipeline``, which calls
``unet(x, t)`` without labels, and the unconditional branch of a guidance model only sees 10 % of
the training steps, so it is a weaker unconditional model than one trained for it.

Why 250 training timesteps rather than the usual 1,000: full ancestral DDPM sampling takes one
network call per training timestep; 250 keeps it affordable in the notebook on a CPU while
DDIM-20 is still 12.5x fewer calls.

Deterministic on the CPU with one thread: same seed, same weights. The unconditional model takes
about 12 minutes of CPU time, the conditional one about 10; more wall time on busy cores. The
learning rate warms up over 200 steps, then decays (cosine) to zero; the notebook's live training
repeats the first steps of this run exactly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from helpers import diffusion

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MAX_FID_DDIM_20 = 15.0
MIN_CFG_ACCURACY = 0.9
MAX_CHECKPOINT_MB = 5


def train_one(which: str, steps: int | None, out_dir: Path, eval_every: int = 0, snapshots: bool = False,
              check: bool = True) -> dict:
    """Train, save and report one model; with ``check``, fail if it misses its bar or the size limit."""
    path = Path(out_dir) / diffusion.CHECKPOINT_FILES[which]
    conditional = which == "conditional"
    start = time.perf_counter()

    def report(step, metric, ema):
        print(f"  step {step}: {'cfg accuracy' if conditional else 'fid ddim-20'} {metric:.3f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
        if snapshots:  # for choosing the number of steps: the run is a prefix of any longer one
            diffusion.save_checkpoint(path.with_name(f"{path.stem}_step{step}.pt"), ema, diffusion.make_scheduler(),
                                      {"metric_fp32_ema": metric}, {"steps": step})

    result = diffusion.train_checkpoint(path, conditional, steps, eval_every=eval_every, on_eval=report)
    metrics, training = result["metrics"], result["training"]
    size_mb = path.stat().st_size / 2**20
    print(f"{which}: {metrics} loss {training['loss_first']:.3f} -> {training['loss_last']:.4f}, "
          f"{training['steps']} steps in {training['seconds']:.0f} s ({training['cpu_seconds']:.0f} s CPU) "
          f"-> {path} ({size_mb:.1f} MB)", flush=True)
    if check:
        assert size_mb < MAX_CHECKPOINT_MB, f"{path} is {size_mb:.1f} MB, over the {MAX_CHECKPOINT_MB} MB limit"
        if conditional:
            assert metrics["cfg_accuracy_scale_2_ddim_20"] >= MIN_CFG_ACCURACY, metrics
        else:
            assert metrics["fid_ddim_20_360_vs_train"] <= MAX_FID_DDIM_20, metrics
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--which", choices=["unconditional", "conditional", "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped run's)")
    parser.add_argument("--eval-every", type=int, default=0, help="print the metric every N steps")
    parser.add_argument("--snapshots", action="store_true", help="save a checkpoint at every evaluation")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for which in (["unconditional", "conditional"] if args.which == "both" else [args.which]):
        train_one(which, args.steps, args.out_dir, eval_every=args.eval_every, snapshots=args.snapshots,
                  check=args.steps is None)


if __name__ == "__main__":
    main()
