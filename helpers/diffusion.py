"""Chapter 02's diffusion models of 16x16 digits: the network, its noise schedule, training and sampling.

One source for both users: ``notebooks/02_diffusion.ipynb`` runs these functions live and shows
their code (``helpers.source.show_source``), and ``scripts/train_diffusion.py`` trains the shipped
checkpoints with the same functions (``make checkpoints``):

- ``data/ddpm_digits.pt``: an unconditional DDPM, a diffusers ``UNet2DModel`` that predicts the
  noise, 250 training timesteps, cosine schedule (4,000 steps of 64 digits).
- ``data/cfg_digits.pt``: the same network with a class embedding of 11 entries (digits 0-9 and
  a *null* label, 10), trained with 10 % label dropout for classifier-free guidance (3,000 steps).

The pieces: ``make_unet``, ``make_scheduler`` and ``make_sampler`` build the network, its DDPM noise
schedule and the samplers that share it; ``learning_rate_factor`` and ``train`` are the training
loop (noise prediction, EMA of the weights); ``sample`` draws images, with classifier-free guidance
and negative labels; ``timed`` measures wall and CPU seconds; ``save_checkpoint``,
``load_checkpoint`` and ``train_checkpoint`` write, read and make the shipped files.

Deterministic on the CPU with one thread: same seed, same weights. A run of ``train`` is the
prefix of any longer run with the same learning-rate schedule (``schedule_steps``), which is how
the notebook's live training repeats the first steps of the checkpoint's run exactly.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

NUM_TRAIN_TIMESTEPS = 250  # full DDPM sampling = 250 network calls (1,000 would be 4x slower on a CPU)
IMAGE_SIZE = 16
NUM_CLASSES = 10
NULL_LABEL = NUM_CLASSES  # the "no label" entry of the class embedding
LABEL_DROPOUT = 0.1
BATCH_SIZE = 64
LEARNING_RATE = 1e-3
WARMUP_STEPS = 200
EMA_DECAY = 0.999
STEPS = {"unconditional": 4000, "conditional": 3000}  # training steps of the shipped checkpoints
CHECKPOINT_FILES = {"unconditional": "ddpm_digits.pt", "conditional": "cfg_digits.pt"}
TRAINING_COMMAND = "python scripts/train_diffusion.py"  # recorded in each checkpoint
# The checkpoints' own metrics (train_checkpoint), measured on DDIM-20 samples:
METRIC_FID_SAMPLES = 360  # same size as the floor: 360 test digits vs the 1,437 training digits
METRIC_CFG_SCALE = 2.0  # guidance overshoots (saturated digits) from about 3 with DDIM-20 and clipping
METRIC_CFG_PER_CLASS = 20


def make_unet(conditional: bool = False, sample_size: int = IMAGE_SIZE):
    """The chapter's ``UNet2DModel``: (16, 32, 64) channels, self-attention at 4x4, ~1 M parameters.

    ``conditional=True`` adds a class embedding of 11 entries (digits 0-9 and ``NULL_LABEL``), which
    diffusers adds to the timestep embedding: the model of classifier-free guidance.
    """
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=sample_size, in_channels=1, out_channels=1,
        block_out_channels=(16, 32, 64), norm_num_groups=8,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        num_class_embeds=NUM_CLASSES + 1 if conditional else None,
    )


def make_scheduler():
    """The models' DDPM scheduler: cosine ("squaredcos_cap_v2") betas, 250 timesteps, noise prediction."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                         prediction_type="epsilon", clip_sample=True)


def make_sampler(scheduler, kind: str = "ddim", steps: int = 20):
    """A sampler with ``scheduler``'s noise schedule, set to ``steps`` steps: "ddpm", "ddim" or "dpm-solver".

    DDIM uses trailing timestep spacing (its first step starts at t = T-1, pure noise); DPM-Solver
    thresholds its estimate of the clean image to the pixels' range, as DDPM and DDIM clip it.
    """
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    classes = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpm-solver": DPMSolverMultistepScheduler}
    options = {"ddim": {"timestep_spacing": "trailing"}, "dpm-solver": {"thresholding": True}}.get(kind, {})
    sampler = classes[kind].from_config(scheduler.config, **options)
    sampler.set_timesteps(steps)
    return sampler


def learning_rate_factor(step: int, steps: int, warmup_steps: int = WARMUP_STEPS) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))


def train(unet, scheduler, images: torch.Tensor, labels: torch.Tensor | None = None, steps: int = 1000,
          batch_size: int = BATCH_SIZE, learning_rate: float = LEARNING_RATE, seed: int = 0,
          label_dropout: float = LABEL_DROPOUT, schedule_steps: int | None = None, progress: bool = True,
          callback: Callable | None = None, callback_every: int = 500):
    """Train ``unet`` to predict the noise that ``scheduler.add_noise`` added; return (EMA copy, losses).

    Each step draws a batch of ``images``, a timestep and Gaussian noise per image, noises the batch
    in one jump and regresses the noise with mean squared error. The learning rate follows
    ``learning_rate_factor`` over ``schedule_steps`` (default: ``steps``; a shorter run with the
    same ``schedule_steps`` is exactly the first steps of the longer one). With ``labels`` the model
    is class-conditional, and each label is replaced by ``NULL_LABEL`` with probability
    ``label_dropout``. The random draws come from a CPU generator seeded with ``seed``, whatever the
    model's device. ``callback(step, ema_unet)`` runs every ``callback_every`` steps.
    """
    from tqdm.auto import tqdm

    device = unet.device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=learning_rate, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, schedule_steps or steps))
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    losses = []
    for step in tqdm(range(steps), desc="training", disable=not progress):
        unet.train()
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        clean = images[index]
        noise = torch.randn(clean.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
        noisy = scheduler.add_noise(clean, noise, timesteps)  # sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise
        class_labels = None
        if labels is not None:
            drop = torch.rand(batch_size, generator=generator) < label_dropout
            class_labels = torch.where(drop, NULL_LABEL, labels[index]).to(device)
        noise_pred = unet(noisy.to(device), timesteps.to(device), class_labels=class_labels).sample
        loss = F.mse_loss(noise_pred, noise.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        decay = min(EMA_DECAY, (1 + step) / (10 + step))  # EMA warm-up: early averages forget fast
        with torch.no_grad():
            for ema_param, param in zip(ema.parameters(), unet.parameters()):
                ema_param.lerp_(param, 1 - decay)
        if callback is not None and (step + 1) % callback_every == 0:
            callback(step + 1, ema)
    return ema, losses


@torch.no_grad()
def sample(unet, scheduler, count: int, seed: int = 0, class_labels: torch.Tensor | None = None,
           guidance_scale: float = 1.0, negative_labels: torch.Tensor | None = None,
           trajectory: list | None = None) -> torch.Tensor:
    """Draw ``count`` images in [-1, 1] (returned on the CPU) with ``scheduler``, its timesteps set by the caller.

    Starts from noise drawn with ``seed`` and calls ``unet`` at each of the scheduler's timesteps. With
    ``class_labels``, classifier-free guidance in diffusers' convention: noise = uncond + w * (cond - uncond),
    with w = ``guidance_scale``, cond the prediction for ``class_labels`` and uncond the prediction for
    ``NULL_LABEL``, or for ``negative_labels`` (negative conditioning: steer away from them). w = 0 is the
    uncond branch alone, w = 1 the plain conditional model (one network call a step each); any other w
    batches both branches into one call. With a ``trajectory`` list (DDPM and DDIM samplers, whose steps
    return their estimate of the clean image), each step appends ``(t, x_t, predicted x_0)``, on the CPU.
    """
    device = unet.device
    generator = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    images = torch.randn((count, unet.config.in_channels, size, size), generator=generator).to(device)
    if class_labels is not None:
        class_labels = class_labels.to(device)
        uncond_labels = (torch.full_like(class_labels, NULL_LABEL) if negative_labels is None
                         else negative_labels.to(device))
    for t in scheduler.timesteps:
        if class_labels is None:
            noise_pred = unet(images, t).sample
        elif guidance_scale == 1:
            noise_pred = unet(images, t, class_labels=class_labels).sample
        elif guidance_scale == 0:
            noise_pred = unet(images, t, class_labels=uncond_labels).sample
        else:
            both = unet(torch.cat([images, images]), t, class_labels=torch.cat([uncond_labels, class_labels])).sample
            uncond, cond = both.chunk(2)
            noise_pred = uncond + guidance_scale * (cond - uncond)
        output = scheduler.step(noise_pred, t, images, generator=generator)
        if trajectory is not None:
            trajectory.append((int(t), images.cpu(), output.pred_original_sample.cpu()))
        images = output.prev_sample
    return images.clamp(-1, 1).cpu()


def timed(function: Callable, *args, **kwargs):
    """``(function(*args, **kwargs), wall seconds, CPU seconds of this process)``, CUDA work included."""
    if torch.cuda.is_initialized():  # CUDA runs asynchronously: wait for what was queued before and during
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def unconditional_fid(unet, scheduler, real_images: torch.Tensor, count: int = METRIC_FID_SAMPLES,
                      steps: int = 20, seed: int = 1) -> float:
    """FID (digits-classifier features) of ``count`` DDIM samples against ``real_images``: the DDPM's metric."""
    from helpers.evaluation import fid

    return fid(sample(unet, make_sampler(scheduler, "ddim", steps), count, seed), real_images)


def guided_class_accuracy(unet, scheduler, per_class: int = METRIC_CFG_PER_CLASS, steps: int = 20,
                          guidance_scale: float = METRIC_CFG_SCALE, seed: int = 1) -> float:
    """Share of guided DDIM samples that the digits classifier reads as the requested digit."""
    from helpers.evaluation import classify

    requested = torch.arange(NUM_CLASSES).repeat_interleave(per_class)
    generated = sample(unet, make_sampler(scheduler, "ddim", steps), len(requested), seed,
                       class_labels=requested, guidance_scale=guidance_scale)
    return (classify(generated) == requested).float().mean().item()


def save_checkpoint(path, unet, scheduler, metrics: dict, training: dict) -> None:
    """Write fp16 weights plus the configs to rebuild the model and its scheduler (plain Python types)."""
    state = {name: value.half() if value.is_floating_point() else value
             for name, value in unet.state_dict().items()}
    torch.save({"unet_config": dict(unet.config), "scheduler_config": dict(scheduler.config),
                "state_dict": state, "metrics": metrics, "training": training, "command": TRAINING_COMMAND}, path)


def load_checkpoint(path, device="cpu"):
    """``(unet in fp32 eval mode on device, DDPMScheduler, checkpoint dict)`` from a file ``save_checkpoint`` wrote."""
    from diffusers import DDPMScheduler, UNet2DModel

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    unet = UNet2DModel.from_config(checkpoint["unet_config"])
    unet.load_state_dict({name: value.float() for name, value in checkpoint["state_dict"].items()})
    return unet.eval().to(device), DDPMScheduler.from_config(checkpoint["scheduler_config"]), checkpoint


def train_checkpoint(path, conditional: bool, steps: int | None = None, seed: int = 0, eval_every: int = 0,
                     on_eval: Callable | None = None, progress: bool = True) -> dict:
    """Train one shipped model on the training digits, save it to ``path`` and return its metrics and training record.

    The model is measured on the fp16 weights that ship, after a reload: FID of 360 DDIM-20 samples
    (unconditional) or guided class accuracy at ``METRIC_CFG_SCALE`` (conditional). ``steps`` defaults to the
    shipped run's (``STEPS``). Every ``eval_every`` steps, ``on_eval(step, metric, ema_unet)`` gets the
    metric of the fp32 EMA weights so far.
    """
    from helpers.data import digits

    torch.manual_seed(seed)
    which = "conditional" if conditional else "unconditional"
    steps = steps or STEPS[which]
    train_images, train_labels = digits(IMAGE_SIZE, "train")
    unet, scheduler = make_unet(conditional), make_scheduler()
    metric_name = "cfg_accuracy_scale_2_ddim_20" if conditional else "fid_ddim_20_360_vs_train"

    def measure(model, model_scheduler) -> float:
        return (guided_class_accuracy(model, model_scheduler) if conditional
                else unconditional_fid(model, model_scheduler, train_images))

    def evaluate(step, ema):
        on_eval(step, measure(ema, scheduler), ema)

    (ema, losses), seconds, cpu_seconds = timed(
        train, unet, scheduler, train_images, train_labels if conditional else None, steps=steps, seed=seed,
        progress=progress, callback=evaluate if eval_every else None, callback_every=eval_every or steps)
    training = {"steps": steps, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE, "seed": seed,
                "ema_decay": EMA_DECAY, "label_dropout": LABEL_DROPOUT if conditional else 0.0,
                "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                "loss_first": losses[0], "loss_last": sum(losses[-100:]) / len(losses[-100:])}
    save_checkpoint(path, ema, scheduler, {}, training)
    ema, scheduler, _ = load_checkpoint(path)  # measure the fp16 weights that ship
    metrics = {metric_name: measure(ema, scheduler)}
    save_checkpoint(path, ema, scheduler, metrics, training)
    return {"metrics": metrics, "training": training}

