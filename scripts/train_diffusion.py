"""Train chapter 02's two diffusion models on 16x16 digits ("train live, then load").

    python scripts/train_diffusion.py                       # both models (or: make checkpoints)
    python scripts/train_diffusion.py --which unconditional # only one
    python scripts/train_diffusion.py --measure-fids        # no training: add the seed FIDs to the checkpoint

A command-line wrapper over ``helpers.diffusion`` (the models, the training loop and the sampler
live there, once; the notebook runs and shows the same code). Writes, each about 2 MB (fp16
weights; the metrics are measured on them):

- ``data/ddpm_digits.pt``: the unconditional DDPM (4,000 steps). Metrics: FID of 360 DDIM-20
  samples against the 1,437 training digits (digits-classifier features), checked <= ``MAX_FID_DDIM_20``;
  and FID of full 250-step DDPM sampling, the same 360 vs 1,437 (``fid_ddpm_250_360_vs_train``, checked
  <= ``MAX_FID_DDPM_250``), stored with the DDIM-20 FIDs of three seeds (the spread of a 360-sample FID)
  and how they were measured under ``seed_fids``. The notebook records these rather than sampling 360
  digits with 250 network calls each (under 2 minutes of CPU time) and two more seeds of DDIM-20.
- ``data/cfg_digits.pt``: the class-conditional model for classifier-free guidance (3,000 steps,
  10 % label dropout). Metric: class accuracy of 200 DDIM-20 samples at guidance scale 2, checked
  >= ``MIN_CFG_ACCURACY``.

Why two models rather than one conditional model whose null label gives the unconditional
branch: the chapter's DDPM section wraps its model in diffusers' ``DDPMPipeline``, which calls
``unet(x, t)`` without labels, and the unconditional branch of a guidance model only sees 10 % of
the training steps (the notebook compares it with the model trained for it).

Why 250 training timesteps rather than the usual 1,000: full ancestral DDPM sampling takes one
network call per training timestep; 250 keeps it affordable on a CPU (this script's FID, 20 digits
live in the notebook) while DDIM-20 is still 12.5x fewer calls.

Deterministic on the CPU with one thread: same seed, same weights, same FIDs. The unconditional model
takes about 12 minutes of CPU time to train and 2 more for its seed FIDs, the conditional one about 10;
more wall time on busy cores. ``--measure-fids`` loads the shipped unconditional checkpoint, measures and
saves it again with its weights untouched (it checks every tensor). The
learning rate warms up over 200 steps, then decays (cosine) to zero; the notebook's live training
repeats the first steps of this run exactly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from helpers import diffusion
from helpers.data import digits
from helpers.evaluation import fid

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MAX_FID_DDIM_20 = 15.0
MAX_FID_DDPM_250 = 15.0  # the full sampler has the fast one's bar
DDPM_FID_SEEDS = (0,)  # 2 minutes of CPU time per seed; DDIM-20's seeds give the spread
DDIM_FID_SEEDS = (0, 1, 2)  # the notebook's seeds: it reproduces seed 0 live and reads the others
MEASURE_COMMAND = "python scripts/train_diffusion.py --measure-fids"
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


def measure_seed_fids(path: Path) -> dict:
    """Add the FIDs of full DDPM sampling and of DDIM-20, 360 samples per seed, to the checkpoint at ``path``.

    DDPM-250 (250 network calls per image) for the seeds ``DDPM_FID_SEEDS``, DDIM-20 for ``DDIM_FID_SEEDS``
    (its spread over seeds is the noise of a 360-sample FID). The checkpoint is loaded as it ships (fp16
    weights, run in fp32 on the CPU) and written back with the same tensors: only ``metrics`` and
    ``seed_fids`` change. Returns the ``seed_fids`` record."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    unet, scheduler, _ = diffusion.load_checkpoint(path)
    train_images, _ = digits(diffusion.IMAGE_SIZE, "train")
    count = diffusion.METRIC_FID_SAMPLES
    record = {"samples_per_seed": count, "reference": f"the {len(train_images)} training digits",
              "features": "digits classifier",
              "weights": "the shipped fp16 weights, run in fp32 on the CPU, one thread",
              "command": MEASURE_COMMAND}
    for kind, steps, seeds in [("ddpm", diffusion.NUM_TRAIN_TIMESTEPS, DDPM_FID_SEEDS), ("ddim", 20, DDIM_FID_SEEDS)]:
        by_seed = {}
        for seed in seeds:
            samples, _, cpu = diffusion.timed(diffusion.sample, unet, diffusion.make_sampler(scheduler, kind, steps),
                                              count, seed=seed)
            by_seed[seed] = fid(samples, train_images)
            print(f"  {kind}-{steps}, seed {seed}: FID {by_seed[seed]:.3f} ({cpu:.0f} s CPU)", flush=True)
        record[f"{kind}_{steps}_fid_by_seed"] = by_seed
    fid_ddpm = record[f"ddpm_{diffusion.NUM_TRAIN_TIMESTEPS}_fid_by_seed"][DDPM_FID_SEEDS[0]]
    assert fid_ddpm <= MAX_FID_DDPM_250, record
    metric_name = f"fid_ddpm_{diffusion.NUM_TRAIN_TIMESTEPS}_{count}_vs_train"
    torch.save({**checkpoint, "metrics": {**checkpoint["metrics"], metric_name: fid_ddpm}, "seed_fids": record}, path)
    reloaded = torch.load(path, map_location="cpu", weights_only=True)
    assert reloaded["state_dict"].keys() == checkpoint["state_dict"].keys() and all(
        torch.equal(reloaded["state_dict"][name], value) for name, value in checkpoint["state_dict"].items()), \
        f"{path}: the weights changed"
    print(f"{path}: {metric_name} {fid_ddpm:.3f}; {record}", flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--which", choices=["unconditional", "conditional", "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the shipped run's)")
    parser.add_argument("--eval-every", type=int, default=0, help="print the metric every N steps")
    parser.add_argument("--snapshots", action="store_true", help="save a checkpoint at every evaluation")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--measure-fids", action="store_true",
                        help="train nothing: add the DDPM-250 and DDIM-20 seed FIDs to the checkpoint in --out-dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    unconditional_path = args.out_dir / diffusion.CHECKPOINT_FILES["unconditional"]
    if args.measure_fids:
        measure_seed_fids(unconditional_path)
        return
    for which in (["unconditional", "conditional"] if args.which == "both" else [args.which]):
        train_one(which, args.steps, args.out_dir, eval_every=args.eval_every, snapshots=args.snapshots,
                  check=args.steps is None)
        if which == "unconditional" and args.steps is None:  # the shipped run
            measure_seed_fids(unconditional_path)


if __name__ == "__main__":
    main()
