"""Train chapter 02's two diffusion models on 16x16 digits ("train live, then load").

    python scripts/train_diffusion.py                       # both models (or: make checkpoints)
    python scripts/train_diffusion.py --which unconditional # only one

Writes, each about 2 MB (fp16 weights; the metrics below are measured on them):

- ``data/ddpm_digits.pt``: an unconditional DDPM, a diffusers ``UNet2DModel`` that predicts the
  noise, 250 training timesteps, cosine schedule. Metric: FID of 360 DDIM-20 samples against the
  1,437 training digits (digits-classifier features), asserted <= ``MAX_FID_DDIM_20``.
- ``data/cfg_digits.pt``: the same network with a class embedding of 11 entries (digits 0-9 and a
  *null* label, 10), trained with 10 % label dropout for classifier-free guidance. Metric: class
  accuracy of DDIM-20 samples at guidance scale 2, asserted >= ``MIN_CFG_ACCURACY``.

Why two models rather than one conditional model whose null label gives the unconditional
branch: the chapter's DDPM section wraps its model in diffusers' ``DDPMPipeline``, which calls
``unet(x, t)`` without labels, and the unconditional branch of a guidance model only sees 10 % of
the training steps, so it is a weaker unconditional model than one trained for it.

Why 250 training timesteps rather than the usual 1,000: full ancestral DDPM sampling takes one
network call per training timestep; 250 keeps it affordable in the notebook on a CPU while
DDIM-20 is still 12.5x fewer calls.

Deterministic on the CPU with one thread: same seed, same weights. The unconditional model takes
about 13 minutes of CPU time (4,000 steps of 64 digits), the conditional one about 10 (3,000
steps); more wall time on busy cores. The learning rate warms up over 200 steps, then decays
(cosine) to zero; the notebook's live training repeats the first steps of this run exactly.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
COMMAND = "python scripts/train_diffusion.py"

NUM_TRAIN_TIMESTEPS = 250
NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES  # the "no label" entry of the class embedding
LABEL_DROPOUT = 0.1
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WARMUP_STEPS = 200
EMA_DECAY = 0.999
STEPS = {"unconditional": 4000, "conditional": 3000}
FILES = {"unconditional": "ddpm_digits.pt", "conditional": "cfg_digits.pt"}
FID_SAMPLES = 360  # same size as the floor: 360 test digits vs the 1,437 training digits
MAX_FID_DDIM_20 = 15.0
MIN_CFG_ACCURACY = 0.9
CFG_SCALE = 2.0  # guidance overshoots (saturated digits) from about 3 with DDIM-20 and clipping


def make_unet(conditional: bool = False, sample_size: int = 16):
    """The chapter's UNet2DModel: (16, 32, 64) channels, self-attention at 4x4, ~1 M parameters."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=sample_size, in_channels=1, out_channels=1,
        block_out_channels=(16, 32, 64), norm_num_groups=8,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        num_class_embeds=NUM_CLASSES + 1 if conditional else None,
    )


def make_scheduler():
    """DDPM scheduler: cosine ("squaredcos_cap_v2") betas, 250 timesteps, noise prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                         prediction_type="epsilon", clip_sample=True)


def learning_rate_factor(step, steps, warmup_steps=WARMUP_STEPS):
    """Linear warm-up, then cosine decay to zero at ``steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))


def train(unet, scheduler, images, labels=None, steps=1000, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
          seed=0, label_dropout=LABEL_DROPOUT, progress=True, callback=None, callback_every=500):
    """Train ``unet`` to predict the noise; return (EMA copy of the model, list of losses).

    With ``labels`` the model is class-conditional and each label is replaced by the null label
    with probability ``label_dropout``. ``callback(step, ema_unet)`` runs every ``callback_every``.
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(s, steps))
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    losses = []
    for step in tqdm(range(steps), desc="training", disable=not progress):
        unet.train()
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        clean = images[index]
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
        noisy = scheduler.add_noise(clean, noise, timesteps)
        class_labels = None
        if labels is not None:
            drop = torch.rand(batch_size, generator=generator) < label_dropout
            class_labels = torch.where(drop, NULL_LABEL, labels[index])
        loss = F.mse_loss(unet(noisy, timesteps, class_labels=class_labels).sample, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        warmup.step()
        losses.append(loss.item())
        decay = min(EMA_DECAY, (1 + step) / (10 + step))  # EMA warm-up: early averages forget fast
        with torch.no_grad():
            for ema_param, param in zip(ema.parameters(), unet.parameters()):
                ema_param.lerp_(param, 1 - decay)
        if callback is not None and (step + 1) % callback_every == 0:
            callback(step + 1, ema)
    return ema, losses


@torch.no_grad()
def sample(unet, scheduler, count, generator, class_labels=None, guidance_scale=1.0, batch_size=None):
    """Draw ``count`` images with ``scheduler`` (its timesteps set by the caller).

    Classifier-free guidance in diffusers' convention: noise = uncond + w * (cond - uncond);
    w = 0 is the unconditional model, w = 1 the plain conditional one. ``class_labels`` may hold
    the null label; a negative label can be passed as the "uncond" branch by the caller.
    """
    size = unet.config.sample_size
    images = torch.randn((count, 1, size, size), generator=generator)
    for t in scheduler.timesteps:
        if class_labels is None:
            noise = unet(images, t).sample
        elif guidance_scale == 1.0:
            noise = unet(images, t, class_labels=class_labels).sample
        elif guidance_scale == 0.0:
            noise = unet(images, t, class_labels=torch.full_like(class_labels, NULL_LABEL)).sample
        else:
            both = unet(torch.cat([images, images]), t,
                        class_labels=torch.cat([torch.full_like(class_labels, NULL_LABEL), class_labels])).sample
            uncond, cond = both.chunk(2)
            noise = uncond + guidance_scale * (cond - uncond)
        images = scheduler.step(noise, t, images, generator=generator).prev_sample
    return images.clamp(-1, 1)


def ddim(scheduler, steps):
    """A DDIM scheduler with the DDPM scheduler's schedule, set to ``steps`` steps."""
    from diffusers import DDIMScheduler

    ddim_scheduler = DDIMScheduler.from_config(scheduler.config, timestep_spacing="trailing")
    ddim_scheduler.set_timesteps(steps)
    return ddim_scheduler


def evaluate_unconditional(unet, scheduler, train_images, count=FID_SAMPLES, steps=20, seed=1):
    from helpers.evaluation import fid

    generated = sample(unet, ddim(scheduler, steps), count, torch.Generator().manual_seed(seed))
    return fid(generated, train_images)


def evaluate_conditional(unet, scheduler, per_class=20, steps=20, guidance_scale=CFG_SCALE, seed=1):
    from helpers.evaluation import classify

    requested = torch.arange(NUM_CLASSES).repeat_interleave(per_class)
    generated = sample(unet, ddim(scheduler, steps), len(requested), torch.Generator().manual_seed(seed),
                       class_labels=requested, guidance_scale=guidance_scale)
    return (classify(generated) == requested).float().mean().item()


def save_checkpoint(path, unet, scheduler, metrics, training):
    """fp16 weights plus the configs to rebuild the model and its scheduler (plain Python types)."""
    state = {name: value.half() if value.is_floating_point() else value
             for name, value in unet.state_dict().items()}
    torch.save({"unet_config": dict(unet.config), "scheduler_config": dict(scheduler.config),
                "state_dict": state, "metrics": metrics, "training": training, "command": COMMAND}, path)


def load_checkpoint(path):
    """(unet in fp32 eval mode, DDPMScheduler, checkpoint dict) from a file ``save_checkpoint`` wrote."""
    from diffusers import DDPMScheduler, UNet2DModel

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    unet = UNet2DModel.from_config(checkpoint["unet_config"])
    unet.load_state_dict({name: value.float() for name, value in checkpoint["state_dict"].items()})
    return unet.eval(), DDPMScheduler.from_config(checkpoint["scheduler_config"]), checkpoint


def run(which, steps, out_dir=DATA_DIR, seed=0, eval_every=0, check=True, snapshots=False):
    from helpers.data import digits

    torch.manual_seed(seed)
    conditional = which == "conditional"
    train_images, train_labels = digits(16, "train")
    unet, scheduler = make_unet(conditional), make_scheduler()
    start, cpu_start = time.time(), time.process_time()

    def log(step, ema):
        metric = (evaluate_conditional(ema, scheduler) if conditional
                  else evaluate_unconditional(ema, scheduler, train_images))
        print(f"  step {step}: {'cfg accuracy' if conditional else 'fid ddim-20'} {metric:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
        if snapshots:  # for choosing the number of steps: the run is a prefix of any longer one
            save_checkpoint(Path(out_dir) / f"{Path(FILES[which]).stem}_step{step}.pt", ema, scheduler,
                            {"metric_fp32_ema": metric}, {"steps": step})

    ema, losses = train(unet, scheduler, train_images, train_labels if conditional else None,
                        steps=steps, seed=seed, callback=log if eval_every else None,
                        callback_every=eval_every or steps)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    path = Path(out_dir) / FILES[which]
    training = {"steps": steps, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE, "seed": seed,
                "ema_decay": EMA_DECAY, "label_dropout": LABEL_DROPOUT if conditional else 0.0,
                "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                "loss_first": losses[0], "loss_last": sum(losses[-100:]) / len(losses[-100:])}
    save_checkpoint(path, ema, scheduler, {}, training)
    ema, scheduler, checkpoint = load_checkpoint(path)  # measure the fp16 weights that ship
    if conditional:
        metrics = {"cfg_accuracy_scale_2_ddim_20": evaluate_conditional(ema, scheduler)}
    else:
        metrics = {"fid_ddim_20_360_vs_train": evaluate_unconditional(ema, scheduler, train_images)}
    save_checkpoint(path, ema, scheduler, metrics, training)
    size_mb = path.stat().st_size / 2**20
    print(f"{which}: {metrics} loss {training['loss_first']:.3f} -> {training['loss_last']:.4f}, "
          f"{steps} steps in {seconds:.0f} s ({cpu_seconds:.0f} s CPU) -> {path} ({size_mb:.1f} MB)", flush=True)
    if check:
        assert size_mb < 5, f"{path} is {size_mb:.1f} MB, over the 5 MB limit"
        if conditional:
            assert metrics["cfg_accuracy_scale_2_ddim_20"] >= MIN_CFG_ACCURACY, metrics
        else:
            assert metrics["fid_ddim_20_360_vs_train"] <= MAX_FID_DDIM_20, metrics
    return path, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--which", choices=["unconditional", "conditional", "both"], default="both")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: per model)")
    parser.add_argument("--eval-every", type=int, default=0, help="log the metric every N steps")
    parser.add_argument("--snapshots", action="store_true", help="save a checkpoint at every evaluation")
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for which in (["unconditional", "conditional"] if args.which == "both" else [args.which]):
        run(which, args.steps or STEPS[which], args.out_dir, eval_every=args.eval_every,
            check=args.steps is None, snapshots=args.snapshots)


if __name__ == "__main__":
    main()
