"""Tiny-hub builder, family ``diffusion``: Stable Diffusion 1.5, Stable Diffusion 3.5 medium, FLUX.1-schnell.

Each is the real diffusers pipeline class with the real repository's components (the same classes,
scheduler and folder layout: ``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``, ...), built
from tiny configs with random weights and saved with diffusers' own ``save_pretrained`` into the
snapshot of its id in ``helpers.models``. The notebooks' unchanged

    StableDiffusionPipeline.from_pretrained(models.STABLE_DIFFUSION_15.repo_id, revision=..., dtype=...)

then load them offline. What is kept from the real repositories, because code depends on it:

- the VAEs have 4 blocks (8x smaller per side, as the real ones) and the real latent channels (4 for
  SD 1.5, 16 for SD 3.5 and FLUX), scaling and shift factors; their channels are tiny, so 512x512
  stays cheap on a CPU;
- the schedulers are the real ones (SD 1.5: ``PNDMScheduler`` with its scaled-linear betas; SD 3.5 and
  FLUX: ``FlowMatchEulerDiscreteScheduler`` with their shifts);
- SD 1.5 keeps its safety checker (``StableDiffusionSafetyChecker`` + ``CLIPImageProcessor``); with
  random weights and the concept thresholds at 1.0 it flags nothing;
- the tokenizers have the real special tokens: CLIP's byte-level BPE (``<|startoftext|>``,
  ``<|endoftext|>``, ``</w>`` word ends, 77 tokens) and T5's unigram (``<pad>``=0, ``</s>``=1,
  ``<unk>``=2, 100 ``<extra_id_n>``), each trained with the ``tokenizers`` library on a few sentences
  (every byte is in the CLIP vocabulary, so any prompt encodes);
- FLUX.1-schnell has no guidance embedding (``guidance_embeds=False``) and packs 2x2 latent patches
  (transformer ``in_channels`` = 4 x 16).

Nothing is trained: every picture these pipelines make is noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from helpers import models

from . import save_to_hub

SENTENCES = [  # what the tokenizers are trained on: the course's prompts, roughly
    "a watercolor painting of a lighthouse on a cliff at sunset",
    "blurry, low quality, text, watermark",
    "a watercolour painting of a red fox in the snow, golden hour light",
    "close up, low angle, shallow depth of field",
    "studio product photograph, soft light, clean background: a ceramic teapot on a wooden table",
    "a photo of a cat, a dog, a horse and a rocket; a red circle at the top left",
    "a blue square at the bottom right and a green triangle in the middle",
]
CLIP_MAX_LENGTH = 77
CLIP_HIDDEN = 32  # SD 1.5's CLIP-L: 768; SD 3.5 also has CLIP-G (1280); FLUX's CLIP-L pooled: 768
T5_HIDDEN = 64  # T5-XXL: 4096; must hold SD 3.5's two CLIP states side by side (2 x 32)
LAYERS = dict(num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def build(environment: dict[str, str]) -> None:
    """Write the three pipelines into the Hugging Face cache that ``environment`` names (FLUX first)."""
    hub_cache = Path(environment["HF_HUB_CACHE"])
    torch.manual_seed(0)
    save_to_hub(hub_cache, models.FLUX_SCHNELL, flux_schnell())
    save_to_hub(hub_cache, models.STABLE_DIFFUSION_15, stable_diffusion_15())
    save_to_hub(hub_cache, models.STABLE_DIFFUSION_35_MEDIUM, stable_diffusion_35_medium())


# ---------------------------------------------------------------- tokenizers
def clip_tokenizer(pad_token: str = "<|endoftext|>"):
    """A CLIP tokenizer: byte-level BPE with ``</w>`` word ends, trained on ``SENTENCES`` (every byte kept)."""
    from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    bpe = Tokenizer(tokenizer_models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = CLIPTokenizer().backend_tokenizer.pre_tokenizer  # CLIP's own word split, byte-level
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|startoftext|>", "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), end_of_word_suffix="</w>",
                                  show_progress=False)
    bpe.train_from_iterator([s.lower() for s in SENTENCES], trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    for byte in pre_tokenizers.ByteLevel.alphabet():  # a word may end in any byte: "x</w>" for every x
        vocab.setdefault(byte + "</w>", len(vocab))
    merges = [tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ")) for merge in model["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token=pad_token, model_max_length=CLIP_MAX_LENGTH)


def t5_tokenizer():
    """A T5 tokenizer: sentencepiece-style unigram (``▁`` word starts) trained on ``SENTENCES``, T5's special tokens."""
    from tokenizers import Tokenizer, models as tokenizer_models, pre_tokenizers, trainers
    from transformers import T5TokenizerFast

    unigram = Tokenizer(tokenizer_models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                                      show_progress=False)
    unigram.train_from_iterator(SENTENCES, trainer)
    vocab = [(piece, float(score)) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    assert [piece for piece, _ in vocab[:3]] == ["<pad>", "</s>", "<unk>"], vocab[:3]
    return T5TokenizerFast(vocab=vocab, extra_ids=100, model_max_length=512)


# ---------------------------------------------------------------- text encoders
def clip_text_config(tokenizer, hidden: int = CLIP_HIDDEN, projection_dim: int = CLIP_HIDDEN):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, projection_dim=projection_dim,
                          max_position_embeddings=CLIP_MAX_LENGTH, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **LAYERS)


def t5_encoder(tokenizer):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=len(tokenizer), d_model=T5_HIDDEN, d_kv=16, d_ff=64, num_layers=2, num_heads=4,
                      feed_forward_proj="gated-gelu", relative_attention_num_buckets=8, is_encoder_decoder=False,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)  # T5 v1.1 (T5-XXL's family): gated GELU
    return T5EncoderModel(config).eval()


def vae(latent_channels: int, **options):
    """An ``AutoencoderKL`` with 4 blocks (8x smaller per side, as SD's and FLUX's) and tiny channels."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels,
                         block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         **options).eval()


# ---------------------------------------------------------------- pipelines
def stable_diffusion_15():
    """``StableDiffusionPipeline`` laid out as stable-diffusion-v1-5: PNDM, CLIP-L, U-Net, VAE, safety checker."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPTextModel, CLIPVisionConfig

    tokenizer = clip_tokenizer()
    text_config = clip_text_config(tokenizer)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=8, cross_attention_dim=CLIP_HIDDEN, attention_head_dim=8)
    scheduler = PNDMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", set_alpha_to_one=False, skip_prk_steps=True,
                              steps_offset=1)  # the real repo's scheduler_config.json
    image_size = 32  # the real checker looks at 224x224 crops; the tiny one at 32x32
    vision_config = CLIPVisionConfig(hidden_size=CLIP_HIDDEN, image_size=image_size, patch_size=8, **LAYERS)
    safety_checker = StableDiffusionSafetyChecker(
        CLIPConfig(text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), projection_dim=16)).eval()
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                           crop_size={"height": image_size, "width": image_size})
    return StableDiffusionPipeline(
        vae=vae(4, sample_size=512, scaling_factor=0.18215), text_encoder=CLIPTextModel(text_config).eval(),
        tokenizer=tokenizer, unet=unet.eval(), scheduler=scheduler, safety_checker=safety_checker,
        feature_extractor=feature_extractor, requires_safety_checker=True)


def stable_diffusion_35_medium():
    """``StableDiffusion3Pipeline`` laid out as stable-diffusion-3.5-medium: MMDiT-X, 2 CLIPs + T5, flow matching."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(pad_token="!"), t5_tokenizer()
    transformer = SD3Transformer2DModel(
        sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=2, attention_head_dim=8,
        num_attention_heads=2, joint_attention_dim=T5_HIDDEN, caption_projection_dim=16,
        pooled_projection_dim=2 * CLIP_HIDDEN, pos_embed_max_size=96, dual_attention_layers=(0,),
        qk_norm="rms_norm")  # 3.5 medium: MMDiT-X (dual attention in the first layers), RMS-normed q/k
    return StableDiffusion3Pipeline(
        transformer=transformer.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0),
        vae=vae(16, sample_size=1024, scaling_factor=1.5305, shift_factor=0.0609, use_quant_conv=False,
                use_post_quant_conv=False),
        text_encoder=CLIPTextModelWithProjection(clip_text_config(tokenizer)).eval(), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(clip_text_config(tokenizer_2)).eval(), tokenizer_2=tokenizer_2,
        text_encoder_3=t5_encoder(tokenizer_3), tokenizer_3=tokenizer_3)


def flux_schnell():
    """``FluxPipeline`` laid out as FLUX.1-schnell: CLIP-L (pooled) + T5, a Flux transformer, 16-channel VAE."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=8, num_attention_heads=2,
        joint_attention_dim=T5_HIDDEN, pooled_projection_dim=CLIP_HIDDEN, guidance_embeds=False,
        axes_dims_rope=(2, 2, 4))  # schnell: no guidance embedding; rope axes sum to the head dim (real: 16+56+56)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False),
        vae=vae(16, sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                use_post_quant_conv=False),
        text_encoder=CLIPTextModel(clip_text_config(tokenizer)).eval(), tokenizer=tokenizer,
        text_encoder_2=t5_encoder(tokenizer_2), tokenizer_2=tokenizer_2, transformer=transformer.eval())
