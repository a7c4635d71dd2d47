"""Chapter 03's models of drawn scenes: a latent text-to-image model and a captioner, at toy scale.

The same three parts as Stable Diffusion and FLUX, trained from scratch on the scenes of
``helpers.scenes`` (32x32 RGB, one coloured shape at one of five places, captioned):

1. a **VAE**, diffusers ``AutoencoderKL``: 32x32x3 pixels <-> 8x8x4 latents (48x fewer numbers);
2. a **text encoder**, transformers ``CLIPTextModel`` from a tiny config, over the word-level
   ``helpers.scenes.caption_tokenizer``;
3. a **denoiser**, diffusers ``UNet2DConditionModel``, that predicts the noise in the latents and
   reads the caption through cross-attention to the text encoder's token states.

The VAE trains first (reconstruction + a small KL term); the text encoder and the UNet then train
together on its latents, with 10 % of the captions replaced by the empty caption so that one
network also learns the unconditional model that classifier-free guidance needs. Training uses
only ``TRAIN_COMBOS``: the nine held-out (colour, shape, position) triples are never drawn.
A fourth model turns the arrow around: a small **captioner** (``Captioner``), image -> caption.

Chapter 03 imports these definitions, shows them, and trains each model live for a few steps;
``scripts/train_text_to_image.py`` runs ``make_checkpoints`` to train them longer into
``data/scenes_vae.pt``, ``data/scenes_text_to_image.pt`` and ``data/scenes_captioner.pt`` (fp16
weights, each with its configs, training record and the metrics measured on those weights),
which ``load_vae``, ``load_text_to_image`` and ``load_captioner`` read back. Deterministic on the
CPU with one thread: same seed, same weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F

from helpers.scenes import HELD_OUT_COMBOS, TRAIN_COMBOS, adherence, caption, caption_tokenizer, make_scenes

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
COMMAND = "python scripts/train_text_to_image.py"
VAE_FILE, T2I_FILE, CAPTIONER_FILE = "scenes_vae.pt", "scenes_text_to_image.pt", "scenes_captioner.pt"

IMAGE_SIZE = 32
TRAIN_SCENES = 3600  # 100 jittered drawings of each of the 36 training triples
TEST_SCENES = 450  # 50 new drawings of each of the 9 held-out triples
VAE_STEPS, VAE_BATCH, VAE_LR, KL_WEIGHT = 600, 32, 2e-3, 1e-7
UNET_STEPS, UNET_BATCH, UNET_LR = 3000, 64, 1e-3
WARMUP_STEPS = 100
CAPTION_DROPOUT = 0.1
NUM_TRAIN_TIMESTEPS = 1000
SAMPLING_STEPS = 20
GUIDANCE_SCALE = 3.0
EVAL_EVERY = 1000  # steps between adherence checks while training
EVAL_PER_PROMPT = 8  # samples per held-out prompt when measuring adherence
MAX_VAE_MSE = 0.01
CAPTIONER_STEPS, CAPTIONER_BATCH, CAPTIONER_LR = 600, 64, 2e-3
MIN_CAPTION_ACCURACY = 0.9
MIN_ADHERENCE = 0.8


class SceneModels(NamedTuple):
    """The parts of the latent text-to-image model that sampling needs, as one tuple."""

    vae: Any  # diffusers AutoencoderKL
    unet: Any  # diffusers UNet2DConditionModel
    text_encoder: Any  # transformers CLIPTextModel
    tokenizer: Any  # helpers.scenes.caption_tokenizer()
    scheduler: Any  # diffusers DDPMScheduler (the training schedule)
    latent_scale: float  # latents are multiplied by it to unit variance (Stable Diffusion's 0.18215)


# ---------------------------------------------------------------------------------------------
# Data: training scenes and new drawings of the held-out triples
# ---------------------------------------------------------------------------------------------
def training_scenes(seed: int = 0):
    """``(images, captions, scenes)``: ``TRAIN_SCENES`` jittered drawings of the 36 training triples."""
    return make_scenes(TRAIN_SCENES, TRAIN_COMBOS, IMAGE_SIZE, seed=seed)


def held_out_scenes(seed: int = 0):
    """``(images, captions, scenes)``: ``TEST_SCENES`` drawings of the 9 held-out triples (drawn with ``seed + 1``)."""
    return make_scenes(TEST_SCENES, HELD_OUT_COMBOS, IMAGE_SIZE, seed=seed + 1)


def held_out_prompts(per_prompt: int = EVAL_PER_PROMPT) -> list[str]:
    """The captions of the 9 held-out triples, each repeated ``per_prompt`` times in a row."""
    return [caption(combo) for combo in HELD_OUT_COMBOS for _ in range(per_prompt)]


# ---------------------------------------------------------------------------------------------
# The three models, from configs (random weights)
# ---------------------------------------------------------------------------------------------
def make_vae():
    """AutoencoderKL: 3x32x32 <-> 4x8x8 (two downsamplings), 0.23 M parameters."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=IMAGE_SIZE,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
        mid_block_add_attention=False,
    )


def make_text_encoder(tokenizer):
    """CLIPTextModel from a tiny config: 2 layers, width 32, over the caption tokenizer's words."""
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return CLIPTextModel(config)


def make_unet():
    """UNet2DConditionModel on 4x8x8 latents, ~1 M parameters; cross-attention to the 32-d token states at 4x4."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=IMAGE_SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=16,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4,
    )


def make_scheduler():
    """The training noise schedule: DDPM, ``NUM_TRAIN_TIMESTEPS`` steps, cosine, predicting the noise."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                         prediction_type="epsilon", clip_sample=False)


def ddim(scheduler, steps=SAMPLING_STEPS):
    """A DDIM scheduler with the training schedule, set to ``steps`` steps.

    "leading" spacing with ``steps_offset=1`` (Stable Diffusion's, which ``StableDiffusionPipeline``
    enforces) starts at t = 951 for 20 steps. "trailing" would start at
    t = 999, where the cosine schedule leaves no signal at all (alpha_bar ~ 2e-9): the first
    prediction of the clean latents divides by sqrt(alpha_bar) ~ 5e-5 and the samples blow up.
    """
    from diffusers import DDIMScheduler

    sampler = DDIMScheduler.from_config(scheduler.config, timestep_spacing="leading", steps_offset=1)
    sampler.set_timesteps(steps)
    return sampler


def encode_text(text_encoder, tokenizer, captions):
    """Token states ``(N, 10, 32)`` that the UNet's cross-attention reads (the empty caption: unconditional)."""
    tokens = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    return text_encoder(tokens.input_ids).last_hidden_state


def warmup_schedule(optimizer):
    """Learning rate rising linearly to its full value over the first ``WARMUP_STEPS`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP_STEPS))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def train_vae(vae, images, steps=VAE_STEPS, batch_size=VAE_BATCH, lr=VAE_LR, seed=0, progress=True):
    """Reconstruction MSE + ``KL_WEIGHT`` x KL(q(z|x) || N(0, I)); returns the list of MSE losses."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    schedule = warmup_schedule(optimizer)
    losses = []
    vae.train()
    for _ in tqdm(range(steps), desc="VAE", disable=not progress):
        batch = images[torch.randint(0, len(images), (batch_size,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        latents = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator)
        reconstruction = vae.decode(latents).sample
        mse = F.mse_loss(reconstruction, batch)
        loss = mse + KL_WEIGHT * posterior.kl().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(mse.item())
    return losses


@torch.no_grad()
def reconstruct(vae, images):
    """``(latents, reconstructions)``: the encoder's posterior means of ``images`` and the decoder's pixels for them."""
    latents = vae.encode(images).latent_dist.mean
    return latents, vae.decode(latents).sample


@torch.no_grad()
def encode_latents(vae, images, batch_size=500):
    """Posterior means and standard deviations of ``images`` under the VAE's encoder."""
    vae.eval()
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        posterior = vae.encode(images[start:start + batch_size]).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def diffusion_loss(unet, text_encoder, tokenizer, scheduler, latents, captions, generator,
                   caption_dropout=CAPTION_DROPOUT):
    """One batch of the denoising loss: noise the latents at random timesteps, predict the noise."""
    batch_size = len(latents)
    drop = torch.rand(batch_size, generator=generator) < caption_dropout
    captions = ["" if dropped else text for text, dropped in zip(captions, drop.tolist())]
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    states = encode_text(text_encoder, tokenizer, captions)
    return F.mse_loss(unet(noisy, timesteps, encoder_hidden_states=states).sample, noise)


def train_denoiser(unet, text_encoder, tokenizer, scheduler, latent_means, latent_stds, captions,
                   latent_scale, steps=UNET_STEPS, batch_size=UNET_BATCH, lr=UNET_LR, seed=0, progress=True,
                   callback=None, callback_every=1000):
    """Train UNet and text encoder together on scaled VAE latents; returns the list of losses.

    Each step draws latents from the VAE's posterior of a batch of training scenes, scales them to
    unit variance and takes one step on ``diffusion_loss`` (learning-rate warm-up, gradients clipped
    to norm 1). ``callback(step)`` runs every ``callback_every`` steps (it must restore train mode
    if it changes it). Both models are left in eval mode.
    """
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    parameters = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    schedule = warmup_schedule(optimizer)
    losses = []
    unet.train()
    text_encoder.train()
    for step in tqdm(range(steps), desc="UNet + text encoder", disable=not progress):
        index = torch.randint(0, len(latent_means), (batch_size,), generator=generator)
        sampled = latent_means[index] + latent_stds[index] * torch.randn(latent_means[index].shape,
                                                                         generator=generator)
        loss = diffusion_loss(unet, text_encoder, tokenizer, scheduler, sampled * latent_scale,
                              [captions[i] for i in index.tolist()], generator)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if callback is not None and (step + 1) % callback_every == 0:
            callback(step + 1)
    unet.eval()
    text_encoder.eval()
    return losses


# ---------------------------------------------------------------------------------------------
# Sampling with classifier-free guidance
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def images_from_prompts(prompts, models: SceneModels, guidance_scale=GUIDANCE_SCALE, steps=SAMPLING_STEPS, seed=0):
    """Images ``(N, 3, 32, 32)`` in [-1, 1] for ``prompts``: DDIM in latent space, noise = uncond + w (cond - uncond).

    ``guidance_scale`` 1 is the plain conditional model (one pass, as diffusers' pipelines do it), 0 the
    unconditional one. The prompts' token states are read by the UNet at every step; the VAE decodes the end.
    """
    vae, unet, text_encoder, tokenizer, scheduler, latent_scale = models
    generator = torch.Generator().manual_seed(seed)
    sampler = ddim(scheduler, steps)
    cond = encode_text(text_encoder, tokenizer, prompts)
    uncond = encode_text(text_encoder, tokenizer, [""] * len(prompts))
    latents = torch.randn((len(prompts), 4, IMAGE_SIZE // 4, IMAGE_SIZE // 4), generator=generator)
    for t in sampler.timesteps:
        if guidance_scale == 1.0:
            noise = unet(latents, t, encoder_hidden_states=cond).sample
        else:
            noise_uncond, noise_cond = unet(torch.cat([latents, latents]), t,
                                            encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
            noise = noise_uncond + guidance_scale * (noise_cond - noise_uncond)
        latents = sampler.step(noise, t, latents).prev_sample
    return vae.decode(latents / latent_scale).sample.clamp(-1, 1)


def measure_adherence(models: SceneModels, guidance_scale, per_prompt=EVAL_PER_PROMPT, seed=1):
    """Share of images for the held-out prompts (``per_prompt`` each) that ``read_scene`` reads as asked."""
    prompts = held_out_prompts(per_prompt)
    return adherence(images_from_prompts(prompts, models, guidance_scale=guidance_scale, seed=seed), prompts)


# ---------------------------------------------------------------------------------------------
# Image-to-text: a small captioner (a VLM in miniature)
# ---------------------------------------------------------------------------------------------
class Captioner(torch.nn.Module):
    """A small VLM: a CNN turns the image into an 8x8 grid of visual tokens (with learned position
    embeddings, like a ViT's patches); a causal transformer decoder writes the caption word by word,
    reading the visual tokens through cross-attention."""

    def __init__(self, vocab_size, width=64, layers=2, heads=4, max_tokens=10, grid=8):
        super().__init__()
        nn = torch.nn
        self.vision = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.GELU(), nn.Conv2d(32, width, 3, 2, 1),
                                    nn.GELU(), nn.Conv2d(width, width, 1))
        self.patch_position = nn.Parameter(0.02 * torch.randn(1, grid * grid, width))
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.token_position = nn.Parameter(0.02 * torch.randn(1, max_tokens, width))
        layer = nn.TransformerDecoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def encode(self, images):
        """(N, 3, 32, 32) -> visual tokens (N, 64, width)."""
        return self.vision(images).flatten(2).transpose(1, 2) + self.patch_position

    def forward(self, images, input_ids, visual_tokens=None):
        """Next-token logits (N, L, vocab) for each prefix of ``input_ids``."""
        visual_tokens = self.encode(images) if visual_tokens is None else visual_tokens
        length = input_ids.shape[1]
        text = self.token_embedding(input_ids) + self.token_position[:, :length]
        causal = torch.nn.Transformer.generate_square_subsequent_mask(length)
        return self.head(self.norm(self.decoder(text, visual_tokens, tgt_mask=causal, tgt_is_causal=True)))

    @torch.no_grad()
    def caption(self, images, tokenizer):
        """Greedy decoding: captions (list of str) for a batch of images in [-1, 1]."""
        visual_tokens = self.encode(images)
        ids = torch.full((len(images), 1), tokenizer.bos_token_id)
        for _ in range(self.token_position.shape[1] - 1):
            next_ids = self(None, ids, visual_tokens)[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_ids], 1)
        captions = []
        for row in ids[:, 1:].tolist():
            row = row[:row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row
            captions.append(tokenizer.decode(row, skip_special_tokens=True))
        return captions


def train_captioner(captioner, tokenizer, images, captions, steps=CAPTIONER_STEPS, batch_size=CAPTIONER_BATCH,
                    lr=CAPTIONER_LR, seed=0, progress=True):
    """Teacher forcing: cross-entropy of each next word given the image and the words before it; returns the losses."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    ids = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                    return_tensors="pt").input_ids
    optimizer = torch.optim.AdamW(captioner.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    captioner.train()
    for _ in tqdm(range(steps), desc="captioner", disable=not progress):
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        logits = captioner(images[index], ids[index, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[index, 1:].reshape(-1),
                               ignore_index=tokenizer.pad_token_id)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    captioner.eval()
    return losses


def caption_accuracy(captioner, tokenizer, images, captions):
    """Share of exact caption matches."""
    predicted = captioner.caption(images, tokenizer)
    return sum(p == c for p, c in zip(predicted, captions)) / len(captions)


# ---------------------------------------------------------------------------------------------
# Checkpoints: fp16 weights + the configs to rebuild each model
# ---------------------------------------------------------------------------------------------
def half_state_dict(module):
    """The module's state dict with floating-point tensors in fp16 (what the checkpoints store)."""
    return {name: value.half() if value.is_floating_point() else value
            for name, value in module.state_dict().items()}


def float_state_dict(state_dict):
    """A stored state dict back in fp32."""
    return {name: value.float() for name, value in state_dict.items()}


def save_vae(path, vae, metrics, training):
    """Write the VAE's config, fp16 weights, metrics and training record to ``path``."""
    torch.save({"vae_config": dict(vae.config), "state_dict": half_state_dict(vae), "metrics": metrics,
                "training": training, "command": COMMAND}, path)


def save_text_to_image(path, unet, text_encoder, scheduler, latent_scale, metrics, training):
    """Write UNet, text encoder (configs + fp16 weights), scheduler config, latent scale, metrics and record."""
    torch.save({"unet_config": dict(unet.config), "text_config": text_encoder.config.to_dict(),
                "scheduler_config": dict(scheduler.config), "latent_scale": latent_scale,
                "unet": half_state_dict(unet), "text_encoder": half_state_dict(text_encoder), "metrics": metrics,
                "training": training, "command": COMMAND}, path)


def save_captioner(path, captioner, metrics, training):
    """Write the captioner's vocabulary size, fp16 weights, metrics and training record to ``path``."""
    torch.save({"vocab_size": captioner.head.out_features, "state_dict": half_state_dict(captioner),
                "metrics": metrics, "training": training, "command": COMMAND}, path)


def load_vae(path=DATA_DIR / VAE_FILE):
    """(AutoencoderKL in fp32 eval mode, checkpoint dict)."""
    from diffusers import AutoencoderKL

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    vae = AutoencoderKL.from_config(checkpoint["vae_config"])
    vae.load_state_dict(float_state_dict(checkpoint["state_dict"]))
    return vae.eval(), checkpoint


def load_text_to_image(path=DATA_DIR / T2I_FILE):
    """(unet, text_encoder, tokenizer, DDPMScheduler, latent_scale, checkpoint dict), the models in fp32 eval mode."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    unet = UNet2DConditionModel.from_config(checkpoint["unet_config"])
    unet.load_state_dict(float_state_dict(checkpoint["unet"]))
    text_encoder = CLIPTextModel(CLIPTextConfig.from_dict(checkpoint["text_config"]))
    text_encoder.load_state_dict(float_state_dict(checkpoint["text_encoder"]))
    scheduler = DDPMScheduler.from_config(checkpoint["scheduler_config"])
    return (unet.eval(), text_encoder.eval(), caption_tokenizer(), scheduler, checkpoint["latent_scale"],
            checkpoint)


def load_captioner(path=DATA_DIR / CAPTIONER_FILE):
    """(Captioner in fp32 eval mode, checkpoint dict)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    captioner = Captioner(checkpoint["vocab_size"])
    captioner.load_state_dict(float_state_dict(checkpoint["state_dict"]))
    return captioner.eval(), checkpoint


# ---------------------------------------------------------------------------------------------
# Training the shipped checkpoints: train, save in fp16, reload, measure on the fp16 weights, save again
# ---------------------------------------------------------------------------------------------
def _timer():
    """A function returning (wall seconds, CPU seconds) since this call, rounded to 0.1."""
    start, cpu_start = time.time(), time.process_time()
    return lambda: (round(time.time() - start, 1), round(time.process_time() - cpu_start, 1))


def make_vae_checkpoint(out_dir, images, test_images, steps=VAE_STEPS, seed=0, progress=True):
    """Train the VAE, write ``out_dir / VAE_FILE``; returns (VAE with the fp16 weights, metrics, training record).

    Metric: reconstruction MSE of ``test_images`` (pixels in [-1, 1]) through the posterior means.
    """
    elapsed = _timer()
    torch.manual_seed(seed)
    vae = make_vae()
    losses = train_vae(vae, images, steps=steps, seed=seed, progress=progress)
    seconds, cpu_seconds = elapsed()
    training = {"steps": steps, "batch_size": VAE_BATCH, "learning_rate": VAE_LR, "kl_weight": KL_WEIGHT,
                "seed": seed, "seconds": seconds, "cpu_seconds": cpu_seconds,
                "loss_first": losses[0], "loss_last": sum(losses[-50:]) / len(losses[-50:])}
    path = Path(out_dir) / VAE_FILE
    save_vae(path, vae, {}, training)
    vae, _ = load_vae(path)  # from here on, the fp16 weights that ship
    _, reconstructions = reconstruct(vae, test_images)
    metrics = {"vae_recon_mse_held_out": F.mse_loss(reconstructions, test_images).item()}
    save_vae(path, vae, metrics, training)
    return vae, metrics, training


def make_text_to_image_checkpoint(out_dir, vae, images, captions, steps=UNET_STEPS, seed=0, eval_every=EVAL_EVERY,
                                  per_prompt=EVAL_PER_PROMPT, progress=True, log: Callable[[str], None] = print):
    """Train text encoder + UNet on ``vae``'s latents, write ``out_dir / T2I_FILE``; returns (metrics, training record).

    Every ``eval_every`` steps the held-out adherence at w = ``GUIDANCE_SCALE`` (``per_prompt // 2``
    images a prompt) goes into the record's ``adherence_curve`` and to ``log``. Metrics: held-out
    adherence at w = 3, 1 and 0, ``per_prompt`` images a prompt.
    """
    elapsed = _timer()
    torch.manual_seed(seed)
    latent_means, latent_stds = encode_latents(vae, images)
    latent_scale = float(1 / latent_means.std())  # as Stable Diffusion's 0.18215: unit-variance latents
    tokenizer = caption_tokenizer()
    unet, text_encoder, scheduler = make_unet(), make_text_encoder(tokenizer), make_scheduler()
    curve, curve_per_prompt = {}, max(1, per_prompt // 2)

    def record_adherence(step):  # its own generator: training is unchanged by it
        unet.eval()
        text_encoder.eval()
        models = SceneModels(vae, unet, text_encoder, tokenizer, scheduler, latent_scale)
        curve[step] = round(measure_adherence(models, GUIDANCE_SCALE, per_prompt=curve_per_prompt), 3)
        unet.train()
        text_encoder.train()
        seconds, cpu_seconds = elapsed()
        images_measured = len(HELD_OUT_COMBOS) * curve_per_prompt
        log(f"  step {step}: held-out adherence (w = {GUIDANCE_SCALE:g}, {images_measured} images) {curve[step]} "
            f"({seconds:.0f} s, {cpu_seconds:.0f} s CPU)")

    losses = train_denoiser(unet, text_encoder, tokenizer, scheduler, latent_means, latent_stds, captions,
                            latent_scale, steps=steps, seed=seed, progress=progress, callback=record_adherence,
                            callback_every=eval_every)
    seconds, cpu_seconds = elapsed()
    training = {"adherence_curve": curve, "steps": steps, "batch_size": UNET_BATCH, "learning_rate": UNET_LR,
                "seed": seed, "caption_dropout": CAPTION_DROPOUT, "seconds": seconds, "cpu_seconds": cpu_seconds,
                "loss_first": losses[0], "loss_last": sum(losses[-100:]) / len(losses[-100:])}
    path = Path(out_dir) / T2I_FILE
    save_text_to_image(path, unet, text_encoder, scheduler, latent_scale, {}, training)
    unet, text_encoder, tokenizer, scheduler, latent_scale, _ = load_text_to_image(path)
    models = SceneModels(vae, unet, text_encoder, tokenizer, scheduler, latent_scale)
    metrics = {f"adherence_held_out_w{w:g}": measure_adherence(models, w, per_prompt)
               for w in (GUIDANCE_SCALE, 1.0, 0.0)}
    save_text_to_image(path, unet, text_encoder, scheduler, latent_scale, metrics, training)
    return metrics, training


def make_captioner_checkpoint(out_dir, images, captions, test_images, test_captions, steps=CAPTIONER_STEPS, seed=0,
                              progress=True):
    """Train the captioner, write ``out_dir / CAPTIONER_FILE``; returns (metrics, training record).

    Metric: the share of exactly right captions of ``test_images``, from the fp16 weights.
    """
    elapsed = _timer()
    torch.manual_seed(seed)
    tokenizer = caption_tokenizer()
    captioner = Captioner(len(tokenizer))
    losses = train_captioner(captioner, tokenizer, images, captions, steps=steps, seed=seed, progress=progress)
    seconds, cpu_seconds = elapsed()
    training = {"steps": steps, "batch_size": CAPTIONER_BATCH, "learning_rate": CAPTIONER_LR, "seed": seed,
                "seconds": seconds, "cpu_seconds": cpu_seconds,
                "loss_first": losses[0], "loss_last": sum(losses[-50:]) / len(losses[-50:])}
    path = Path(out_dir) / CAPTIONER_FILE
    save_captioner(path, captioner, {}, training)
    captioner, _ = load_captioner(path)
    metrics = {"caption_accuracy_held_out_combos": caption_accuracy(captioner, tokenizer, test_images, test_captions)}
    save_captioner(path, captioner, metrics, training)
    return metrics, training


def make_checkpoints(out_dir=DATA_DIR, stages=("vae", "text_to_image", "captioner"), vae_steps=VAE_STEPS,
                     unet_steps=UNET_STEPS, captioner_steps=CAPTIONER_STEPS, seed=0, eval_every=EVAL_EVERY,
                     progress=True, log: Callable[[str], None] = print,
                     stage_done: Callable[[str, dict, dict], None] | None = None):
    """Train the chosen stages into ``out_dir``; returns {stage: (metrics, training record)}.

    The text-to-image stage needs the VAE: trained now, or loaded from ``out_dir``. Each stage trains
    on ``training_scenes(seed)`` and is measured on ``held_out_scenes(seed)`` or the held-out prompts;
    ``stage_done(stage, metrics, training)`` is called as each stage's file is written.
    """
    out_dir = Path(out_dir)
    images, captions, _ = training_scenes(seed)
    test_images, test_captions, _ = held_out_scenes(seed)
    results = {}

    def done(stage, metrics, training):
        results[stage] = (metrics, training)
        if stage_done is not None:
            stage_done(stage, metrics, training)

    if "vae" in stages:
        vae, vae_metrics, vae_training = make_vae_checkpoint(out_dir, images, test_images, vae_steps, seed, progress)
        done("vae", vae_metrics, vae_training)
    if "text_to_image" in stages:
        vae = vae if "vae" in stages else load_vae(out_dir / VAE_FILE)[0]
        done("text_to_image", *make_text_to_image_checkpoint(out_dir, vae, images, captions, unet_steps, seed,
                                                             eval_every, progress=progress, log=log))
    if "captioner" in stages:
        done("captioner", *make_captioner_checkpoint(out_dir, images, captions, test_images, test_captions,
                                                     captioner_steps, seed, progress))
    return results
