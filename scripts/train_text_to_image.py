"""Train chapter 03's scene models into data/ ("train live, then load"): VAE, text-to-image, captioner.

    python scripts/train_text_to_image.py            # or: make checkpoints
    python scripts/train_text_to_image.py --quick    # a few steps of each stage into /tmp, no checks
    python scripts/train_text_to_image.py --only captioner   # one stage (text_to_image loads the VAE)

A command-line wrapper over ``helpers.text_to_image``, where the models, training loops and the
sampler live (chapter 03 imports and shows the same code). Writes, each under 5 MB:

- ``data/scenes_vae.pt``: the VAE (``AutoencoderKL``, 0.23 M parameters); metric: reconstruction
  MSE of held-out scenes, checked <= ``MAX_VAE_MSE``;
- ``data/scenes_text_to_image.pt``: text encoder + UNet (1 M parameters) + scheduler config + latent
  scale; metric: prompt adherence on the held-out prompts, read back from the pixels by
  ``helpers.scenes.read_scene``, at guidance w = 3, 1 and 0 (checked >= ``MIN_ADHERENCE`` and above
  w = 1 at w = 3);
- ``data/scenes_captioner.pt``: the captioner (0.13 M parameters); metric: exact-match caption
  accuracy on held-out scenes, checked >= ``MIN_CAPTION_ACCURACY``.

Each metric is measured by this run on the fp16 weights that ship, on new drawings of the nine
held-out triples, printed, and stored in its file (``checkpoint["metrics"]``, beside the training
record in ``checkpoint["training"]``); data/README.md records them. Deterministic on the CPU with
one thread: same seed, same weights. About 8 minutes of CPU time.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from helpers import text_to_image as t2i

STAGES = ("vae", "text_to_image", "captioner")


def check(metrics: dict, sizes_mb: dict) -> None:
    """Fail when a file is 5 MB or more, or a measured metric misses its bar."""
    assert all(mb < 5 for mb in sizes_mb.values()), sizes_mb
    if "vae_recon_mse_held_out" in metrics:
        assert metrics["vae_recon_mse_held_out"] <= t2i.MAX_VAE_MSE, metrics
    if f"adherence_held_out_w{t2i.GUIDANCE_SCALE:g}" in metrics:
        with_guidance = metrics[f"adherence_held_out_w{t2i.GUIDANCE_SCALE:g}"]
        assert with_guidance >= t2i.MIN_ADHERENCE, metrics
        assert with_guidance > metrics["adherence_held_out_w1"], metrics
    if "caption_accuracy_held_out_combos" in metrics:
        assert metrics["caption_accuracy_held_out_combos"] >= t2i.MIN_CAPTION_ACCURACY, metrics


def print_stage(stage: str, metrics: dict, training: dict) -> None:
    """One line for a finished stage: its metrics, steps and time."""
    loss = f"loss {training['loss_first']:.3f} -> {training['loss_last']:.4f}, " if stage == "text_to_image" else ""
    print(f"{stage}: {metrics}, {loss}{training['steps']} steps in {training['seconds']:.0f} s "
          f"({training['cpu_seconds']:.0f} s CPU)", flush=True)


def main(argv: list[str] | None = None) -> dict:
    """Parse the command line, train the chosen stages, print and check what they measured; returns the metrics."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="10 steps of each stage (adherence logged at step 5), into /tmp or --out-dir; no checks")
    parser.add_argument("--only", choices=STAGES, action="append",
                        help="train only this stage (repeatable); text_to_image loads the VAE from --out-dir")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: data/ (--quick: /tmp)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out_dir = args.out_dir or (Path("/tmp") if args.quick else t2i.DATA_DIR)
    steps = dict(vae_steps=10, unet_steps=10, captioner_steps=10, eval_every=5) if args.quick else {}
    results = t2i.make_checkpoints(out_dir, tuple(args.only or STAGES), progress=not args.no_progress,
                                   log=lambda line: print(line, flush=True), stage_done=print_stage, **steps)
    metrics = {name: value for stage_metrics, _ in results.values() for name, value in stage_metrics.items()}
    files = (t2i.VAE_FILE, t2i.T2I_FILE, t2i.CAPTIONER_FILE)
    sizes_mb = {name: round((out_dir / name).stat().st_size / 2**20, 2) for name in files if (out_dir / name).exists()}
    print(f"files (MB) in {out_dir}: {sizes_mb}", flush=True)
    if not args.quick:
        check(metrics, sizes_mb)
    return metrics


if __name__ == "__main__":
    main()
