"""Chapter 01's GANs, once: the models, their losses, the training loops and the long runs.

``notebooks/01_gans.ipynb`` imports this module and shows the definitions it teaches with
``helpers.source.show_source``; ``scripts/train_gans.py`` trains the small profile's long runs with it
(``data/gans/<name>.pt``), so that the live runs in the notebook and the shipped checkpoints come from
the same code. The models are small (under 1 M parameters) and work on 1-channel square images in
[-1, 1] of any size divisible by 4 (16x16 digits in the small profile, 28x28 MNIST in the full one).

- Models: ``VanillaGenerator`` / ``VanillaDiscriminator`` (MLPs), ``DCGANGenerator`` /
  ``DCGANDiscriminator``, ``ConditionalGenerator`` / ``ConditionalDiscriminator``, ``wgan_critic``,
  the style-based generator (``SlowLinear``, ``MappingNetwork``, ``StyleModulation``,
  ``StyleGenerator``) and CycleGAN's ``Translator`` / ``PatchDiscriminator``.
- Losses: ``bce_discriminator_loss``, ``non_saturating_generator_loss``, ``saturating_generator_loss``,
  ``gradient_penalty``, ``wgan_gp_critic_loss``, ``wgan_generator_loss``, ``least_squares``.
- Training: ``TrainingSetup`` (data, batches, the FID that picks checkpoints), ``real_batches``,
  ``gan_samples``, ``BestCheckpoint``, ``train_vanilla_gan``, ``train_gan``, ``train_cyclegan``.
- Diversity: ``mean_pairwise_distance`` and its bootstrap interval, ``mean_pairwise_distance_interval``.
- Long runs ("train live, then load"): ``LongRun``, ``long_runs`` (the six recipes), ``train_run``,
  ``train_long_run``, ``save_long_run``, ``load_long_run``, and ``SMALL_PROFILE``, the settings the
  shipped checkpoints were trained with.

Randomness: every loop draws from torch's global generator (seed it first, as ``train_run`` does) except
the order of the real batches and the noise of ``gan_samples``, which have generators of their own; on
the CPU with one thread the same seed gives the same weights, bit for bit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from helpers.evaluation import DigitsClassifier, fid

LATENT_DIM = 100  # length of the noise vector z every generator starts from
BATCH_SIZE = 64
GP_WEIGHT = 10.0  # WGAN-GP's lambda
COMMAND = "python scripts/train_gans.py"  # what made the shipped checkpoints (saved in each file)


# --- the vanilla GAN: two multilayer perceptrons ------------------------------------------------------------

class VanillaGenerator(nn.Module):
    """Noise (latent_dim) -> 256 -> 512 -> image_size² pixels in [-1, 1] (Tanh), LeakyReLU(0.2) between."""

    def __init__(self, image_size: int, latent_dim: int = LATENT_DIM):
        super().__init__()
        self.image_size, self.latent_dim = image_size, latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, image_size * image_size), nn.Tanh(),
        )

    def forward(self, noise, labels=None):  # `labels` unused: an unconditional GAN
        return self.net(noise).view(-1, 1, self.image_size, self.image_size)


class VanillaDiscriminator(nn.Module):
    """Image -> 512 -> 256 -> the probability that it is real (Sigmoid), with dropout against memorising."""

    def __init__(self, image_size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(image_size * image_size, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(256, 1), nn.Sigmoid(),
        )

    def forward(self, images, labels=None):
        return self.net(images)  # probability that each image is real


def count_parameters(model: nn.Module) -> int:
    """The number of numbers a model learns."""
    return sum(p.numel() for p in model.parameters())


# --- plumbing every training run shares ---------------------------------------------------------------------

def real_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int = BATCH_SIZE, seed: int = 0,
                 device: str = "cpu"):
    """Endless shuffled (images, labels) batches of a training set, on `device` (the last partial batch of
    each pass is dropped; the order comes from a generator of its own, seeded with `seed`)."""
    order_generator = torch.Generator().manual_seed(seed)
    images, labels = images.to(device), labels.to(device)
    while True:
        order = torch.randperm(len(images), generator=order_generator).to(device)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = order[start:start + batch_size]
            yield images[batch], labels[batch]


def balanced_labels(count: int) -> torch.Tensor:
    """0, 1, ..., 9, 0, 1, ...: `count` labels that ask for every digit equally often."""
    return torch.arange(count) % 10


@torch.no_grad()
def gan_samples(generator: nn.Module, count: int, labels=None, seed: int = 0) -> torch.Tensor:
    """`count` images drawn by `generator` in eval mode from noise seeded with `seed`, returned on the CPU.

    The same seed gives the same noise, so two checkpoints are compared on the same inputs. `labels`
    (one per image) for a conditional generator; the generator's train/eval mode is restored."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    noise = torch.randn(count, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    images = generator(noise.to(device), None if labels is None else labels.to(device))
    generator.train(was_training)
    return images.float().cpu()


class BestCheckpoint:
    """Scores a generator every few steps with `training_fid`; keeps the best weights and a few samples.

    GANs do not converge to a minimum, so the last step is rarely the best one. Each score uses the same
    `count` images of noise seed 0 (with balanced labels for a conditional generator)."""

    def __init__(self, training_fid: Callable[[torch.Tensor], float], count: int, conditional: bool = False):
        self.training_fid, self.count = training_fid, count
        self.labels = balanced_labels(count) if conditional else None
        self.steps, self.fids, self.samples = [], [], []
        self.best_fid, self.best_step, self.best_state = math.inf, 0, None

    def update(self, step: int, generator: nn.Module) -> float:
        """Score `generator` at `step`; remember its weights if it is the best so far. Returns the FID."""
        images = gan_samples(generator, self.count, self.labels, seed=0)  # the same noise every time
        score = self.training_fid(images)
        self.steps.append(step)
        self.fids.append(score)
        self.samples.append(images[:10])
        if score < self.best_fid:
            self.best_fid, self.best_step = score, step
            self.best_state = copy.deepcopy(generator.state_dict())
        return score

    def best_generator(self, generator: nn.Module) -> nn.Module:
        """A copy of `generator` with the best weights seen (the original keeps training's last weights)."""
        best = copy.deepcopy(generator)
        if self.best_state is not None:  # None: the run was shorter than one evaluation interval
            best.load_state_dict(self.best_state)
        return best.eval()


@dataclass
class TrainingSetup:
    """What every training run shares: the real training set, its batches, and the FID that picks checkpoints.

    The training FID compares `fid_count` generated images with `reference` on the 64-d features of `judge`
    (``helpers.evaluation.fid(..., features="digits")``, which embeds the reference set once)."""

    images: torch.Tensor  # real training images, (N, 1, size, size) in [-1, 1]
    labels: torch.Tensor  # their digits, (N,)
    reference: torch.Tensor  # the real images each training FID compares with
    judge: DigitsClassifier  # whose features the training FID uses
    fid_count: int = 360  # generated images per training FID
    eval_every: int = 100  # steps between training FIDs
    batch_size: int = BATCH_SIZE
    device: str = "cpu"

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def training_fid(self, images: torch.Tensor) -> float:
        """FID of `images` against the reference set, on the judge's features."""
        return fid(images, self.reference, features="digits", classifier=self.judge)

    def batches(self, seed: int = 0):
        """Endless shuffled batches of the training set (``real_batches``) on the set-up's device."""
        return real_batches(self.images, self.labels, self.batch_size, seed, self.device)

    def best_checkpoint(self, conditional: bool = False) -> BestCheckpoint:
        """A fresh keeper of the best weights, scored with this set-up's training FID."""
        return BestCheckpoint(self.training_fid, self.fid_count, conditional)


# --- training loops -----------------------------------------------------------------------------------------

def train_vanilla_gan(generator, discriminator, steps, setup: TrainingSetup, lr, name="vanilla GAN"):
    """The textbook loop: BCELoss on probabilities, D on real and detached fakes, then G (non-saturating).

    Returns the history (per-step losses, and the ``BestCheckpoint`` under "checkpoints") and a copy of the
    generator at its best training FID."""
    criterion = nn.BCELoss()
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    real_target = torch.ones(setup.batch_size, 1, device=setup.device)
    fake_target = torch.zeros(setup.batch_size, 1, device=setup.device)
    batches = setup.batches()
    history = {"d_loss": [], "g_loss": [], "checkpoints": setup.best_checkpoint()}
    for step in tqdm(range(1, steps + 1), desc=name):
        real_images, _ = next(batches)
        noise = torch.randn(setup.batch_size, generator.latent_dim, device=setup.device)
        fake_images = generator(noise)

        # 1. discriminator: real -> 1, fake -> 0; detach() keeps this step out of the generator
        d_loss = (criterion(discriminator(real_images), real_target)
                  + criterion(discriminator(fake_images.detach()), fake_target))
        optimizer_d.zero_grad()
        d_loss.backward()
        optimizer_d.step()

        # 2. generator: make the discriminator say "real" (non-saturating loss -log D(G(z)))
        g_loss = criterion(discriminator(fake_images), real_target)
        optimizer_g.zero_grad()
        g_loss.backward()
        optimizer_g.step()

        history["d_loss"].append(d_loss.item())
        history["g_loss"].append(g_loss.item())
        if step % setup.eval_every == 0:
            history["checkpoints"].update(step, generator)
    return history, history["checkpoints"].best_generator(generator)


# --- DCGAN: convolutions and batch norm; discriminators output logits from here on --------------------------

class DCGANGenerator(nn.Module):
    """Noise -> a (2·channels) × size/4 × size/4 map -> two (bilinear upsampling x2 + convolution) -> image."""

    def __init__(self, image_size: int, latent_dim: int = LATENT_DIM, channels: int = 32):
        super().__init__()
        self.latent_dim, self.channels, self.start = latent_dim, channels, image_size // 4
        self.project = nn.Sequential(  # noise -> a (2·channels) × start × start feature map
            nn.Linear(latent_dim, 2 * channels * self.start ** 2, bias=False),
            nn.BatchNorm1d(2 * channels * self.start ** 2), nn.ReLU())
        self.upsample = nn.Sequential(  # x2, x2 -> image_size
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2 * channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(channels, 1, 3, padding=1), nn.Tanh())

    def forward(self, noise, labels=None):
        features = self.project(noise).view(-1, 2 * self.channels, self.start, self.start)
        return self.upsample(features)


class DCGANDiscriminator(nn.Module):
    """Two strided convolutions (size /4), batch norm (optional), LeakyReLU, a linear layer to one logit."""

    def __init__(self, image_size: int, channels: int = 32, batch_norm: bool = True):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # /2
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1),  # /2
            nn.BatchNorm2d(2 * channels) if batch_norm else nn.Identity(), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * channels * (image_size // 4) ** 2, 1))

    def forward(self, images, labels=None):
        return self.net(images)  # a logit: > 0 means "real"


def bce_discriminator_loss(discriminator, real, fake, labels):
    """-log D(x) - log(1 - D(G(z))) on logits: real -> 1, fake -> 0."""
    real_logits, fake_logits = discriminator(real, labels), discriminator(fake, labels)
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def non_saturating_generator_loss(discriminator, fake, labels):
    """-log D(G(z)): strong gradients exactly when the discriminator rejects the fakes."""
    logits = discriminator(fake, labels)
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))  # -log D(G(z))


def saturating_generator_loss(discriminator, fake, labels):
    """log(1 - D(G(z))), minimised: the minimax game's own loss, flat when D rejects the fakes."""
    logits = discriminator(fake, labels)
    return -F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))  # log(1 - D(G(z))), minimised


def train_gan(generator, discriminator, steps, setup: TrainingSetup, *, d_loss_fn=bce_discriminator_loss,
              g_loss_fn=non_saturating_generator_loss, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
              critic_steps=1, generator_steps=1, optimizer="adam", clip_weights=None, conditional=False,
              ema_decay=None, decay_after=None, name="GAN"):
    """Alternate discriminator and generator updates; return the history and the best generator.

    The losses are passed in; `critic_steps` discriminator steps per generator step, or `generator_steps`
    generator steps per discriminator step (more than 1, on fresh noise each, and the generator outruns its
    judge: section 7's mode collapse); `optimizer` is "adam" (with `betas`) or "rmsprop" (the original
    WGAN's); `clip_weights=c` clamps every discriminator weight to [-c, c] after each of its steps (the
    original WGAN's Lipschitz constraint); `conditional` feeds the labels to both players; `ema_decay` samples
    from an exponential moving average of the generator's weights; learning rates fall linearly to 0 between
    `decay_after` and `steps`. The history holds the per-step losses, D's mean output on real and fake images
    every 10 steps, and the ``BestCheckpoint``."""
    make_optimizer = {"adam": lambda parameters, lr: torch.optim.Adam(parameters, lr=lr, betas=betas),
                      "rmsprop": lambda parameters, lr: torch.optim.RMSprop(parameters, lr=lr)}[optimizer]
    optimizer_g = make_optimizer(generator.parameters(), lr_g)
    optimizer_d = make_optimizer(discriminator.parameters(), lr_d)
    decay_after = decay_after or steps  # learning rates fall linearly to 0 between `decay_after` and `steps`
    lr_factor = lambda step: min(1.0, (steps - step) / max(1, steps - decay_after))  # noqa: E731
    schedulers = [torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor) for optimizer in (optimizer_g, optimizer_d)]
    sampler = copy.deepcopy(generator) if ema_decay else generator  # the weights that make the images
    batches = setup.batches()
    history = {"d_loss": [], "g_loss": [], "d_real": [], "d_fake": [],
               "checkpoints": setup.best_checkpoint(conditional)}
    for step in tqdm(range(1, steps + 1), desc=name):
        for _ in range(critic_steps):
            real_images, labels = next(batches)
            labels = labels if conditional else None
            noise = torch.randn(setup.batch_size, generator.latent_dim, device=setup.device)
            fake_images = generator(noise, labels)
            d_loss = d_loss_fn(discriminator, real_images, fake_images.detach(), labels)
            optimizer_d.zero_grad()
            d_loss.backward()
            optimizer_d.step()
            if clip_weights:  # the original WGAN: a crude way to keep the critic Lipschitz
                with torch.no_grad():
                    for parameter in discriminator.parameters():
                        parameter.clamp_(-clip_weights, clip_weights)

        for generator_step in range(generator_steps):
            if generator_step > 0:  # further generator steps: fresh fakes against the same discriminator
                noise = torch.randn(setup.batch_size, generator.latent_dim, device=setup.device)
                fake_images = generator(noise, labels)
            g_loss = g_loss_fn(discriminator, fake_images, labels)
            optimizer_g.zero_grad()
            g_loss.backward()
            optimizer_g.step()
        for scheduler in schedulers:
            scheduler.step()
        if ema_decay:
            decay = min(ema_decay, (1 + step) / (10 + step))  # warm-up: early on, average over fewer steps
            with torch.no_grad():
                for averaged, current in zip(sampler.parameters(), generator.parameters()):
                    averaged.lerp_(current, 1 - decay)
                for averaged, current in zip(sampler.buffers(), generator.buffers()):
                    averaged.copy_(current)  # batch-norm statistics: take the current ones

        history["d_loss"].append(d_loss.item())
        history["g_loss"].append(g_loss.item())
        if step % 10 == 0:  # how sure is D? (mean sigmoid of its logits, every 10 steps)
            with torch.no_grad():
                history["d_real"].append(torch.sigmoid(discriminator(real_images, labels)).mean().item())
                history["d_fake"].append(torch.sigmoid(discriminator(fake_images, labels)).mean().item())
        if step % setup.eval_every == 0:
            history["checkpoints"].update(step, sampler)
    return history, history["checkpoints"].best_generator(sampler)


# --- the conditional GAN: the label goes into both players --------------------------------------------------

class ConditionalGenerator(nn.Module):
    """G(z, y): the vanilla MLP generator with a learned embedding of the label concatenated to the noise."""

    def __init__(self, image_size: int, latent_dim: int = LATENT_DIM, num_classes: int = 10,
                 embedding_dim: int = 10):
        super().__init__()
        self.image_size, self.latent_dim = image_size, latent_dim
        self.label_embedding = nn.Embedding(num_classes, embedding_dim)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + embedding_dim, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, image_size * image_size), nn.Tanh())

    def forward(self, noise, labels):
        inputs = torch.cat([noise, self.label_embedding(labels)], dim=1)  # z and "which digit"
        return self.net(inputs).view(-1, 1, self.image_size, self.image_size)


class ConditionalDiscriminator(nn.Module):
    """D(x, y): is this a real image *of this class*? The flattened image and a label embedding, to a logit."""

    def __init__(self, image_size: int, num_classes: int = 10, embedding_dim: int = 10):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, embedding_dim)
        self.net = nn.Sequential(
            nn.Linear(image_size * image_size + embedding_dim, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
            nn.Linear(256, 1))

    def forward(self, images, labels):
        return self.net(torch.cat([images.flatten(1), self.label_embedding(labels)], dim=1))  # a logit


# --- WGAN-GP: a critic, kept 1-Lipschitz by a gradient penalty ----------------------------------------------

def gradient_penalty(critic, real, fake, labels=None):
    """E[(‖∇ critic(x̂)‖₂ - 1)²] at random points x̂ between real and fake images (Gulrajani et al., 2017)."""
    epsilon = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    between = (epsilon * real + (1 - epsilon) * fake).requires_grad_(True)
    scores = critic(between, labels)
    gradients, = torch.autograd.grad(scores.sum(), between, create_graph=True)  # create_graph: penalty is trained
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def wgan_gp_critic_loss(critic, real, fake, labels):
    """The critic maximises E[f(x)] - E[f(G(z))] (so minimises its negative), plus the gradient penalty."""
    return (critic(fake, labels).mean() - critic(real, labels).mean()
            + GP_WEIGHT * gradient_penalty(critic, real, fake, labels))


def wgan_critic_loss(critic, real, fake, labels):
    """The original WGAN's critic loss, E[f(G(z))] - E[f(x)]: no penalty (its weights are clipped instead)."""
    return critic(fake, labels).mean() - critic(real, labels).mean()


def wgan_generator_loss(critic, fake, labels):
    """The generator minimises -E[f(G(z))]."""
    return -critic(fake, labels).mean()


def wgan_critic(image_size: int) -> DCGANDiscriminator:
    """A WGAN critic: the DCGAN discriminator without batch norm (WGAN-GP's penalty is per sample; the
    clipped WGAN uses the same critic, so that the two differ only in how they keep it Lipschitz)."""
    return DCGANDiscriminator(image_size, batch_norm=False)  # no batch norm: the penalty is per sample


# --- measuring diversity: how far apart are the samples? -------------------------------------------------

def mean_pairwise_distance(images: torch.Tensor) -> float:
    """The mean Euclidean (pixel) distance between two different images of a set: near 0 when collapsed."""
    flat = images.flatten(1).double()
    count = len(flat)
    return float(torch.cdist(flat, flat).sum() / (count * (count - 1)))


def mean_pairwise_distance_interval(images: torch.Tensor, resamples: int = 1000, confidence: float = 0.95,
                                    seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval for ``mean_pairwise_distance``: resample the images with replacement and average
    the distances over the pairs of different draws (a draw paired with itself is left out).

    A resample that draws image i c_i times has the pairwise sum c^T D c over its draws (D's diagonal is 0),
    so every resample costs one matrix product instead of an (n x n) gather."""
    flat = images.flatten(1).double()
    distances = torch.cdist(flat, flat)
    count = len(flat)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(count, (resamples, count), generator=generator)
    draws = torch.zeros(resamples, count, dtype=torch.float64).scatter_add_(
        1, picks, torch.ones(resamples, count, dtype=torch.float64))  # c: how often each image was drawn
    means = ((draws @ distances) * draws).sum(dim=1) / (count * (count - 1))
    tail = (1 - confidence) / 2
    low, high = torch.quantile(means, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


class LatentMapper(nn.Module):
    """A trained generator, frozen, behind a small network that chooses the noise vector it is fed.

    Section 7's mode collapse trains only this network: every image it can produce is one the generator
    draws, so what the game changes is *which* images come out, not how well they are drawn. It starts as
    the identity (the last layer is zero) and keeps its output on the sphere of radius sqrt(latent_dim),
    where the generator's N(0, I) noise lies. The generator stays in eval mode (its batch norm frozen too)."""

    def __init__(self, generator: nn.Module, hidden: int = 128):
        super().__init__()
        self.generator = generator.eval().requires_grad_(False)
        self.latent_dim = generator.latent_dim
        self.net = nn.Sequential(nn.Linear(self.latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, self.latent_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()
        return self

    def forward(self, noise, labels=None):
        latent = noise + self.net(noise)
        return self.generator(latent * (self.latent_dim ** 0.5 / latent.norm(dim=1, keepdim=True)))


# --- CycleGAN in miniature: thin digits <-> thick digits, unpaired ------------------------------------------

def thicken(images):
    """Domain B: strokes grow by one pixel (a 3×3 max filter, i.e. morphological dilation)."""
    return F.max_pool2d(images, kernel_size=3, stride=1, padding=1)


class Translator(nn.Module):
    """Image -> image, fully convolutional, predicting a *change* to its input: clip(x + 2·net(x))."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.change = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, 1, 3, padding=1), nn.Tanh())

    def forward(self, images):
        return (images + 2 * self.change(images)).clamp(-1, 1)  # global skip: starts near the identity


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches (a map of logits), as in pix2pix and CycleGAN."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * channels, 1, 3, padding=1))

    def forward(self, images):
        return self.net(images)


def least_squares(scores, target: float):
    """The least-squares GAN loss, mean (score - target)², which CycleGAN uses."""
    return ((scores - target) ** 2).mean()


def train_cyclegan(images, steps, cycle_weight=10.0, seed=0, batch_size: int = BATCH_SIZE, device: str = "cpu"):
    """Train G_AB (thin -> thick), G_BA and their two patch discriminators on unpaired halves of `images`.

    Domain A is every other image, domain B the thickened others: no image is shown with its own translation.
    `cycle_weight=0` switches the cycle-consistency loss off (the ablation). Returns (G_AB, G_BA, history)."""
    torch.manual_seed(seed)
    domain_a, domain_b = images[0::2].to(device), thicken(images[1::2]).to(device)
    g_ab, g_ba = Translator().to(device), Translator().to(device)
    d_a, d_b = PatchDiscriminator().to(device), PatchDiscriminator().to(device)
    optimizer_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], lr=2e-3, betas=(0.5, 0.999))
    optimizer_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=2e-3, betas=(0.5, 0.999))
    history = {"adversarial": [], "cycle": []}
    for _ in tqdm(range(steps), desc="CycleGAN"):
        a = domain_a[torch.randint(len(domain_a), (batch_size,))]
        b = domain_b[torch.randint(len(domain_b), (batch_size,))]  # unpaired: unrelated digits
        fake_b, fake_a = g_ab(a), g_ba(b)
        adversarial = least_squares(d_b(fake_b), 1) + least_squares(d_a(fake_a), 1)
        cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
        optimizer_g.zero_grad()
        (adversarial + cycle_weight * cycle).backward()
        optimizer_g.step()

        d_loss = (least_squares(d_b(b), 1) + least_squares(d_b(fake_b.detach()), 0)
                  + least_squares(d_a(a), 1) + least_squares(d_a(fake_a.detach()), 0))
        optimizer_d.zero_grad()
        d_loss.backward()
        optimizer_d.step()
        history["adversarial"].append(adversarial.item())
        history["cycle"].append(cycle.item())
    return g_ab.eval(), g_ba.eval(), history


# --- a style-based generator in miniature -------------------------------------------------------------------

class SlowLinear(nn.Linear):
    """nn.Linear that Adam trains `lr_multiplier` times slower: weights stored large, used small."""

    def __init__(self, in_features: int, out_features: int, lr_multiplier: float = 0.01):
        super().__init__(in_features, out_features)
        self.lr_multiplier = lr_multiplier
        with torch.no_grad():
            self.weight /= lr_multiplier
            self.bias /= lr_multiplier

    def forward(self, inputs):
        return F.linear(inputs, self.weight * self.lr_multiplier, self.bias * self.lr_multiplier)


class MappingNetwork(nn.Module):
    """z -> w: w = z + MLP(z), the MLP's last layer starting at zero."""

    def __init__(self, dim: int = LATENT_DIM, layers: int = 3):
        super().__init__()
        hidden = [module for _ in range(layers - 1) for module in (SlowLinear(dim, dim), nn.LeakyReLU(0.2))]
        self.mlp = nn.Sequential(*hidden, SlowLinear(dim, dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, noise):
        return noise + self.mlp(noise)


class StyleModulation(nn.Module):
    """Normalise each channel, then scale and shift it by amounts computed from the style w (AdaIN)."""

    def __init__(self, channels: int, style_dim: int = LATENT_DIM):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.to_scale_and_bias = nn.Linear(style_dim, 2 * channels)

    def forward(self, features, style):
        scale, bias = self.to_scale_and_bias(style)[:, :, None, None].chunk(2, dim=1)
        return (1 + scale) * self.norm(features) + bias


class StyleGenerator(nn.Module):
    """Mapping network z -> w, then a size/4 map styled by `coarse_w` and a size/2 map styled by `fine_w`."""

    def __init__(self, image_size: int, latent_dim: int = LATENT_DIM, channels: int = 32):
        super().__init__()
        self.latent_dim, self.channels, self.start = latent_dim, channels, image_size // 4
        self.mapping = MappingNetwork(latent_dim)
        self.project = nn.Linear(latent_dim, 2 * channels * self.start ** 2, bias=False)
        self.coarse_style = StyleModulation(2 * channels, latent_dim)  # 1/4 size: where the strokes go
        self.conv = nn.Conv2d(2 * channels, channels, 3, padding=1, bias=False)
        self.fine_style = StyleModulation(channels, latent_dim)  # 1/2 size: how they look
        self.to_image = nn.Conv2d(channels, 1, 3, padding=1)

    def synthesis(self, coarse_w, fine_w):
        """The image built from two styles: `coarse_w` for the coarse layer, `fine_w` for the finer one."""
        features = self.project(coarse_w).view(-1, 2 * self.channels, self.start, self.start)
        features = F.relu(self.coarse_style(features, coarse_w))
        features = F.interpolate(features, scale_factor=2, mode="bilinear")
        features = F.relu(self.fine_style(self.conv(features), fine_w))
        features = F.interpolate(features, scale_factor=2, mode="bilinear")
        return torch.tanh(self.to_image(features))

    def forward(self, noise, labels=None):
        style = self.mapping(noise)
        return self.synthesis(style, style)  # the same w everywhere, unless we mix


# --- the long runs: "train live, then load" -----------------------------------------------------------------

@dataclass(frozen=True)
class LongRun:
    """One model's long run: the loop that trains it, how to build its two players, its length and recipe."""

    name: str  # the checkpoint's file stem: data/gans/<name>.pt
    trainer: Callable  # train_vanilla_gan or train_gan
    make_generator: Callable[[int], nn.Module]  # image_size -> generator
    make_discriminator: Callable[[int], nn.Module]  # image_size -> discriminator
    steps: int
    recipe: dict = field(default_factory=dict)  # the trainer's keyword arguments

    def describe(self) -> str:
        """One line: trainer(generator, discriminator, steps, recipe), functions by name."""
        recipe = ", ".join(f"{key}={getattr(value, '__name__', value)}" for key, value in self.recipe.items())
        return (f"{self.name}: {self.trainer.__name__}({self.make_generator.__name__}, "
                f"{self.make_discriminator.__name__}, {self.steps:,} steps, {recipe})")


def long_runs(steps: dict[str, int], vanilla_lr: float, critic_steps: int) -> dict[str, LongRun]:
    """The chapter's six long runs, by name. `steps` gives each run's length (generator steps).

    A recipe that decays its learning rates does so over the second half of the *long* run, so that a
    shorter run with the same recipe (the notebook's live run) is exactly the long run's beginning."""
    runs = (
        LongRun("vanilla", train_vanilla_gan, VanillaGenerator, VanillaDiscriminator, steps["vanilla"],
                dict(lr=vanilla_lr)),
        LongRun("dcgan", train_gan, DCGANGenerator, DCGANDiscriminator, steps["dcgan"],
                dict(lr_g=1e-3, lr_d=2e-4)),  # two learning rates
        LongRun("cgan", train_gan, ConditionalGenerator, ConditionalDiscriminator, steps["cgan"],
                dict(lr_g=1e-3, lr_d=1e-3, conditional=True, ema_decay=0.999, decay_after=steps["cgan"] // 2)),
        LongRun("wgan_gp", train_gan, DCGANGenerator, wgan_critic, steps["wgan_gp"],
                dict(d_loss_fn=wgan_gp_critic_loss, g_loss_fn=wgan_generator_loss, lr_g=5e-4, lr_d=5e-4,
                     betas=(0.5, 0.9), critic_steps=critic_steps, decay_after=steps["wgan_gp"] // 2)),
        LongRun("wgan_clip", train_gan, DCGANGenerator, wgan_critic, steps["wgan_clip"],
                dict(d_loss_fn=wgan_critic_loss, g_loss_fn=wgan_generator_loss, lr_g=5e-5, lr_d=5e-5,
                     optimizer="rmsprop", clip_weights=0.01, critic_steps=critic_steps)),  # Arjovsky et al.
        LongRun("stylegan", train_gan, StyleGenerator, DCGANDiscriminator, steps["stylegan"],
                dict(lr_g=1e-3, lr_d=2e-4)),
    )
    return {run.name: run for run in runs}


def train_run(run: LongRun, setup: TrainingSetup, steps: int | None = None, seed: int = 0, name: str | None = None):
    """Seed, build the two players, train them with the run's recipe for `steps` (default: the run's own).

    Returns (history, best generator). The same seed and fewer steps give the long run's beginning."""
    torch.manual_seed(seed)
    generator = run.make_generator(setup.image_size).to(setup.device)
    discriminator = run.make_discriminator(setup.image_size).to(setup.device)
    return run.trainer(generator, discriminator, run.steps if steps is None else steps, setup,
                       name=name or f"{run.name}, long run", **run.recipe)


def long_run_record(history: dict, steps: int) -> dict:
    """What a checkpoint keeps of its run: the training FIDs, the best step, losses averaged over 50 steps."""
    checkpoints = history["checkpoints"]

    def every_50(values):  # means of each 50 steps in a row (none for a run shorter than 50 steps)
        return F.avg_pool1d(torch.tensor(values)[None], 50).flatten().tolist() if len(values) >= 50 else []

    return {"steps": steps, "fid_steps": checkpoints.steps, "fids": checkpoints.fids,
            "best_step": checkpoints.best_step, "d_loss_every_50": every_50(history["d_loss"]),
            "g_loss_every_50": every_50(history["g_loss"])}


def train_long_run(run: LongRun, setup: TrainingSetup, seed: int = 0) -> tuple[nn.Module, dict]:
    """The long run, trained from `seed`: (the generator at its best training FID, in eval mode; its record)."""
    history, generator = train_run(run, setup, seed=seed)
    return generator.eval(), long_run_record(history, run.steps)


def save_long_run(path: Path, generator: nn.Module, record: dict, command: str = COMMAND) -> None:
    """Write a checkpoint: the generator's state_dict, the run's record and the command that made it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": generator.state_dict(), "record": record, "command": command}, path)


def load_long_run(path: Path, run: LongRun, image_size: int, device: str = "cpu") -> tuple[nn.Module, dict]:
    """A shipped long run: (its generator, in eval mode; its record). Builds the generator once, then loads."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make checkpoints` (python scripts/train_gans.py, "
                                "it prints how long each run took).")
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    generator = run.make_generator(image_size).to(device)
    generator.load_state_dict(checkpoint["state_dict"])
    return generator.eval(), checkpoint["record"]


# The small profile's long runs, as the shipped checkpoints data/gans/<name>.pt were trained (16x16 digits,
# seed 0): scripts/train_gans.py trains them with these settings, the notebook's constants cell names the
# same numbers for the small profile (tests/test_train_gans.py checks both against the files).
SMALL_PROFILE = dict(
    image_size=16,
    fid_count=360,  # generated images per training FID
    fid_reference_count=1_437,  # the first this many training digits are the FID's reference set
    eval_every=100,
    vanilla_lr=1e-3,
    critic_steps=5,
    steps={"vanilla": 3_000, "dcgan": 4_000, "cgan": 6_000, "wgan_gp": 4_000, "wgan_clip": 4_000,
           "stylegan": 3_000},
    seed=0,
)
