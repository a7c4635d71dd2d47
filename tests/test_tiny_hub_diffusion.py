"""scripts/tiny_hub/diffusion.py: SD 1.5, SD 3.5 medium and FLUX.1-schnell reload offline at their ids and run."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT
from helpers import models
from helpers.config import tiny_hub_environment

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from tiny_hub import commit_of, diffusion  # noqa: E402

# what each real repository's model_index.json names (the tiny hub must load into the same classes)
REAL_COMPONENTS = {
    models.STABLE_DIFFUSION_15: {
        "unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "text_encoder": "CLIPTextModel",
        "tokenizer": "CLIPTokenizer", "scheduler": "PNDMScheduler", "safety_checker": "StableDiffusionSafetyChecker",
        "feature_extractor": "CLIPImageProcessor"},
    models.STABLE_DIFFUSION_35_MEDIUM: {
        "transformer": "SD3Transformer2DModel", "vae": "AutoencoderKL", "scheduler": "FlowMatchEulerDiscreteScheduler",
        "text_encoder": "CLIPTextModelWithProjection", "text_encoder_2": "CLIPTextModelWithProjection",
        "text_encoder_3": "T5EncoderModel", "tokenizer": "CLIPTokenizer", "tokenizer_2": "CLIPTokenizer",
        "tokenizer_3": "T5Tokenizer"},
    models.FLUX_SCHNELL: {
        "transformer": "FluxTransformer2DModel", "vae": "AutoencoderKL", "scheduler": "FlowMatchEulerDiscreteScheduler",
        "text_encoder": "CLIPTextModel", "text_encoder_2": "T5EncoderModel", "tokenizer": "CLIPTokenizer",
        "tokenizer_2": "T5Tokenizer"},
}


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    environment = tiny_hub_environment(tmp_path_factory.mktemp("tiny-hub"))
    torch.manual_seed(0)
    diffusion.build(environment)
    return Path(environment["HF_HUB_CACHE"])


def load(pipeline_class, model, hub_cache, **kwargs):
    """``from_pretrained(repo_id, revision=...)`` as the notebooks call it, from the tiny cache, offline."""
    pipeline = pipeline_class.from_pretrained(model.repo_id, revision=model.revision, cache_dir=hub_cache,
                                              local_files_only=True, **kwargs)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.mark.parametrize("model", list(REAL_COMPONENTS), ids=lambda m: m.name)
def test_snapshot_has_the_real_repositorys_components(hub_cache, model):
    folder = hub_cache / f"models--{model.repo_id.replace('/', '--')}"
    assert (folder / "refs" / "main").read_text() == commit_of(model)
    index = json.loads((folder / "snapshots" / commit_of(model) / "model_index.json").read_text())
    named = {name: entry[1] for name, entry in index.items() if isinstance(entry, list) and entry[1] is not None}
    assert named == REAL_COMPONENTS[model]


def run(pipeline, **kwargs):
    images = pipeline("a watercolor painting of a lighthouse", num_inference_steps=2, height=64, width=64,
                      output_type="np", generator=torch.Generator().manual_seed(0), **kwargs).images
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all() and images.std() > 0
    return images


def test_flux_schnell_reloads_in_bfloat16_and_runs(hub_cache):
    from diffusers import FluxPipeline

    flux = load(FluxPipeline, models.FLUX_SCHNELL, hub_cache, dtype=torch.bfloat16)
    assert flux.transformer.dtype == torch.bfloat16 and not flux.transformer.config.guidance_embeds
    assert flux.vae.config.latent_channels == 16 and flux.vae_scale_factor == 8
    run(flux, guidance_scale=0.0, max_sequence_length=256)


def test_stable_diffusion_15_keeps_its_safety_checker_and_runs(hub_cache):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    sd15 = load(StableDiffusionPipeline, models.STABLE_DIFFUSION_15, hub_cache, dtype=torch.float32)
    assert sd15.vae_scale_factor == 8 and sd15.vae.config.latent_channels == 4
    assert sd15.text_encoder.config.eos_token_id == sd15.tokenizer.eos_token_id
    assert sd15.tokenizer.model_max_length == 77 and sd15.tokenizer.bos_token == "<|startoftext|>"
    sd15.scheduler = DPMSolverMultistepScheduler.from_config(sd15.scheduler.config)  # as chapter 02 does
    output = sd15("a lighthouse", negative_prompt="blurry", num_inference_steps=2, height=64, width=64,
                  generator=torch.Generator().manual_seed(0))
    assert output.nsfw_content_detected == [False]  # the checker ran (a list, not None) and flagged nothing
    img2img = StableDiffusionImg2ImgPipeline(**sd15.components)
    edited = img2img("a cat", image=np.zeros((64, 64, 3), np.float32) + 0.5, strength=0.5, num_inference_steps=2,
                     output_type="np").images
    assert edited.shape == (1, 64, 64, 3)


def test_stable_diffusion_35_medium_runs_with_and_without_t5(hub_cache):
    from diffusers import StableDiffusion3Pipeline

    sd35 = load(StableDiffusion3Pipeline, models.STABLE_DIFFUSION_35_MEDIUM, hub_cache, dtype=torch.float32)
    assert sd35.vae.config.latent_channels == 16 and sd35.tokenizer_3.pad_token_id == 0
    run(sd35, negative_prompt="blurry", guidance_scale=4.5)
    without_t5 = load(StableDiffusion3Pipeline, models.STABLE_DIFFUSION_35_MEDIUM, hub_cache, dtype=torch.float32,
                      text_encoder_3=None, tokenizer_3=None)  # chapter 02 on a small GPU
    run(without_t5, negative_prompt="blurry", guidance_scale=4.5)


def test_tokenizers_have_the_real_special_tokens_and_encode_any_text():
    clip = diffusion.clip_tokenizer()
    ids = clip("Ünïcode & a zebra!").input_ids
    assert ids[0] == clip.bos_token_id and ids[-1] == clip.eos_token_id
    assert clip.unk_token_id not in ids[1:-1]  # byte-level: no character is unknown
    t5 = diffusion.t5_tokenizer()
    assert (t5.pad_token_id, t5.eos_token_id, t5.unk_token_id) == (0, 1, 2)
    assert "<extra_id_0>" in t5.get_vocab() and t5("a red fox").input_ids[-1] == 1
