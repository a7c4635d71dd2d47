"""scripts/train_text_to_image.py on tiny runs: shapes, determinism, checkpoints round-trip, the pipeline class."""

import importlib.util
from pathlib import Path

import pytest
import torch

from helpers.scenes import HELD_OUT_COMBOS, TRAIN_COMBOS, caption, caption_tokenizer, make_scenes

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_text_to_image.py"


@pytest.fixture(scope="module")
def t2i():
    spec = importlib.util.spec_from_file_location("train_text_to_image", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.set_num_threads(1)
    return module


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(64, TRAIN_COMBOS, seed=0)


def tiny_text_to_image(t2i, scenes, steps=3):
    images, captions, _ = scenes
    torch.manual_seed(0)
    vae = t2i.make_vae()
    vae_losses = t2i.train_vae(vae, images, steps=steps, batch_size=8, progress=False)
    means, stds = t2i.encode_latents(vae.eval(), images)
    tokenizer = caption_tokenizer()
    unet, text_encoder, scheduler = t2i.make_unet(), t2i.make_text_encoder(tokenizer), t2i.make_scheduler()
    losses = t2i.train_denoiser(unet, text_encoder, tokenizer, scheduler, means, stds, captions, 1.0,
                                steps=steps, batch_size=8, progress=False)
    return vae, unet, text_encoder, tokenizer, scheduler, vae_losses, losses


def test_shapes_and_sizes(t2i, scenes):
    vae, unet, text_encoder, tokenizer, *_ = tiny_text_to_image(t2i, scenes, steps=1)
    images = scenes[0][:2]
    latents = vae.encode(images).latent_dist.mean
    assert latents.shape == (2, 4, 8, 8)
    states = t2i.encode_text(text_encoder, tokenizer, ["a red circle at the top left", ""])
    assert states.shape == (2, 10, unet.config.cross_attention_dim)
    for module in (vae, unet, text_encoder):  # fp16 checkpoints must stay under 5 MB
        assert sum(p.numel() for p in module.parameters()) * 2 < 5 * 2**20


def test_training_is_deterministic(t2i, scenes):
    *_, vae_first, first = tiny_text_to_image(t2i, scenes)
    *_, vae_second, second = tiny_text_to_image(t2i, scenes)
    assert vae_first == vae_second and first == second


def test_checkpoints_round_trip_and_pipeline_matches_loop(t2i, scenes, tmp_path):
    from diffusers import StableDiffusionPipeline

    vae, unet, text_encoder, tokenizer, scheduler, _, losses = tiny_text_to_image(t2i, scenes)
    t2i.save_vae(tmp_path / "vae.pt", vae, {}, {})
    t2i.save_text_to_image(tmp_path / "t2i.pt", unet, text_encoder, scheduler, 0.5, {}, {"steps": 3})
    vae, _ = t2i.load_vae(tmp_path / "vae.pt")
    unet, text_encoder, tokenizer, scheduler, scale, checkpoint = t2i.load_text_to_image(tmp_path / "t2i.pt")
    assert scale == 0.5 and checkpoint["training"]["steps"] == 3
    prompts = [caption(HELD_OUT_COMBOS[0]), caption(HELD_OUT_COMBOS[1])]
    looped = t2i.generate(prompts, vae, unet, text_encoder, tokenizer, scheduler, scale, steps=3, seed=0)
    assert looped.shape == (2, 3, 32, 32) and looped.min() >= -1 and looped.max() <= 1
    vae.register_to_config(scaling_factor=scale)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=t2i.ddim(scheduler, 3), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    piped = pipeline(prompts, num_inference_steps=3, guidance_scale=t2i.GUIDANCE_SCALE,
                     generator=torch.Generator().manual_seed(0), output_type="pt").images
    assert torch.allclose(piped, (looped + 1) / 2, atol=1e-3)


def test_sampler_never_starts_from_pure_noise_level(t2i):
    sampler = t2i.ddim(t2i.make_scheduler(), 20)
    assert sampler.timesteps[0] < 999 and sampler.alphas_cumprod[sampler.timesteps[0]] > 1e-3


def test_captioner_trains_and_round_trips(t2i, scenes, tmp_path):
    images, captions, _ = scenes
    tokenizer = caption_tokenizer()
    torch.manual_seed(0)
    captioner = t2i.Captioner(len(tokenizer))
    losses = t2i.train_captioner(captioner, tokenizer, images, captions, steps=30, batch_size=16, progress=False)
    assert sum(losses[-5:]) < sum(losses[:5])
    predicted = captioner.caption(images[:4], tokenizer)
    assert len(predicted) == 4 and all(isinstance(text, str) and "<" not in text for text in predicted)
    t2i.save_captioner(tmp_path / "captioner.pt", captioner, {}, {"steps": 30})
    loaded, _ = t2i.load_captioner(tmp_path / "captioner.pt")
    assert len(loaded.caption(images[:4], tokenizer)) == 4
    assert 0 <= t2i.caption_accuracy(loaded, tokenizer, images[:8], captions[:8]) <= 1
