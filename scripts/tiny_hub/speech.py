"""Tiny-hub builder, speech (chapter 04): openai-whisper, coqui-tts and WavLM, random weights.

What each loader of chapter 04 looks for, written where it looks:

- ``whisper.load_model(models.WHISPER_LARGE)`` / ``(models.WHISPER_TURBO)``: the checkpoint file named in
  ``whisper._MODELS`` (``large-v3.pt``, ``large-v3-turbo.pt``) in ``$XDG_CACHE_HOME/whisper``, saved as
  whisper saves it (``{"dims": ..., "model_state_dict": ...}``). The dimensions are tiny except where the
  loader or the tokenizer needs the real ones: 128 mel bands, the multilingual vocabulary (51,866 tokens:
  99 languages + Cantonese), 1,500 audio positions (30 s of log-mel after the stride-2 convolution), and
  the real decoder layers x heads (32 x 20 for large-v3, 4 x 20 for turbo), because ``load_model`` calls
  ``set_alignment_heads(_ALIGNMENT_HEADS[name])``, which reshapes the real model's boolean mask of
  cross-attention heads to ``(n_text_layer, n_text_head)``.
  openai-whisper checks a file's SHA-256 against its URL; ``helpers.config.trust_tiny_whisper_checkpoints``
  skips that check for the tiny hub's files only.
- ``TTS(models.TACOTRON2)``: coqui-tts's ModelManager (TTS/utils/manage.py) looks in
  ``$TTS_HOME/tts/<type>--<language>--<dataset>--<model>`` and downloads nothing when that folder exists
  (for models released on GitHub): ``model_file.pth`` + ``config.json`` (+ ``scale_stats.npy``, which it
  writes into the config), for Tacotron 2-DDC and for its default vocoder HiFi-GAN v2. Tacotron 2's layer
  sizes are fixed in coqui's code (47 M parameters, 190 MB): only the decoder steps are cut.
- ``TTS(models.XTTS_V2)``: its ``.models.json`` entry has a ``repo_id`` (tts-hub/XTTS-v2), so coqui always
  calls ``huggingface_hub.snapshot_download``, which resolves offline from the Hugging Face cache:
  ``config.json``, ``model.pth``, ``vocab.json`` (coqui's bundled Tortoise BPE plus ``[START]`` and one
  ``[lang]`` token per XTTS language) and ``speakers_xtts.pth`` (one built-in speaker's latents). XTTS's
  licence (CPML) must be agreed before coqui downloads it: the tiny hub writes ``tos_agreed.txt`` into its
  own ``$TTS_HOME`` folder, since its random weights are not the licensed model; the real notebook asks you.
- ``WavLMForXVector`` + ``AutoFeatureExtractor`` at ``models.WAVLM_SPEAKER``: ``save_pretrained``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from helpers import models
from tiny_hub import save_to_hub, snapshot

# openai-whisper -------------------------------------------------------------------------------------------
WHISPER_VOCAB = 51_866  # the multilingual tokenizer of large-v3 and turbo: 100 language tokens
WHISPER_TEXT_LAYERS_HEADS = {models.WHISPER_LARGE: (32, 20), models.WHISPER_TURBO: (4, 20)}  # the real ones
WHISPER_STATE = 40  # 20 heads x 2 dimensions: the decoder's width must divide by the real head count
WHISPER_TEXT_CTX = 32  # tokens per window (real: 448); random weights decode up to half of it each time


def whisper_dims(name: str):
    """Tiny ``ModelDimensions`` that ``whisper.load_model(name)`` and the multilingual tokenizer accept."""
    from whisper.model import ModelDimensions

    layers, heads = WHISPER_TEXT_LAYERS_HEADS[name]
    return ModelDimensions(n_mels=128, n_audio_ctx=1500, n_audio_state=WHISPER_STATE, n_audio_head=2,
                           n_audio_layer=1, n_vocab=WHISPER_VOCAB, n_text_ctx=WHISPER_TEXT_CTX,
                           n_text_state=WHISPER_STATE, n_text_head=heads, n_text_layer=layers)


def build_whisper(folder: Path) -> list[Path]:
    """``large-v3.pt`` and ``large-v3-turbo.pt`` in ``folder`` (``$XDG_CACHE_HOME/whisper``)."""
    import whisper
    from whisper.model import Whisper

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (models.WHISPER_LARGE, models.WHISPER_TURBO):
        dims = whisper_dims(name)
        model = Whisper(dims)
        torch.nn.init.normal_(model.decoder.positional_embedding, std=0.02)  # Whisper() leaves it torch.empty
        model.set_alignment_heads(whisper._ALIGNMENT_HEADS[name])  # fails here, not in the notebook
        path = folder / Path(whisper._MODELS[name]).name
        torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, path)
        written.append(path)
    return written


# coqui-tts: Tacotron 2-DDC and HiFi-GAN v2 (GitHub releases, folders under $TTS_HOME/tts) -------------------
TACOTRON_DECODER_STEPS = 80  # x r=2 frames x 256 samples at 22.05 kHz: 1.9 s of noise per sentence, before trimming


def coqui_folder(tts_home: Path, model_name: str) -> Path:
    """The folder ModelManager reads for ``model_name``: ``$TTS_HOME/tts/tts_models--en--ljspeech--...``."""
    folder = tts_home / "tts" / model_name.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def coqui_entry(model_name: str) -> dict:
    """``model_name``'s entry in coqui-tts's ``.models.json``."""
    entries = json.loads(resources.files("TTS").joinpath(".models.json").read_text(encoding="utf-8"))
    model_type, language, dataset, model = model_name.split("/")
    return entries[model_type][language][dataset][model]


def tiny_audio_config():
    """LJSpeech's audio settings (22.05 kHz, 80 mel bands, hop 256), shared by Tacotron 2 and its vocoder."""
    from TTS.config.shared_configs import BaseAudioConfig

    return BaseAudioConfig(sample_rate=22050, num_mels=80, fft_size=1024, win_length=1024, hop_length=256,
                           mel_fmin=0.0, mel_fmax=8000.0, signal_norm=True, symmetric_norm=True, max_norm=4.0,
                           clip_norm=True, do_trim_silence=True)


def write_scale_stats(path: Path, audio) -> None:
    """A ``scale_stats.npy`` (mel/linear mean and std, in AudioProcessor's format): mean 0, std 1."""
    from TTS.utils.audio import AudioProcessor

    processor = AudioProcessor(audio)
    checked = ("num_mels", "fft_size", "hop_length", "win_length", "mel_fmin", "mel_fmax", "signal_norm",
               "symmetric_norm", "max_norm", "clip_norm", "min_level_db", "preemphasis", "sample_rate")
    stats = {"mel_mean": np.zeros(audio.num_mels), "mel_std": np.ones(audio.num_mels),
             "linear_mean": np.zeros(audio.fft_size // 2 + 1), "linear_std": np.ones(audio.fft_size // 2 + 1),
             "audio_config": {key: getattr(processor, key) for key in checked}}
    np.save(path, stats, allow_pickle=True)


def build_tacotron(tts_home: Path) -> tuple[Path, Path]:
    """Tacotron 2-DDC (phonemes through espeak-ng) and its default vocoder, HiFi-GAN v2, random weights."""
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2
    from TTS.vocoder.configs.hifigan_config import HifiganConfig
    from TTS.vocoder.models import setup_model

    folder = coqui_folder(tts_home, models.TACOTRON2)
    config = Tacotron2Config(audio=tiny_audio_config(), use_phonemes=True, phonemizer="espeak",
                             phoneme_language="en-us", text_cleaner="phoneme_cleaners", r=2,
                             double_decoder_consistency=True, ddc_r=6, max_decoder_steps=TACOTRON_DECODER_STEPS)
    model = Tacotron2(config).eval()  # Tacotron2(config) sets config.characters from its tokenizer
    state = model.state_dict()
    for key in ("decoder.stopnet.1.linear_layer.bias", "coarse_decoder.stopnet.1.linear_layer.bias"):
        state[key].fill_(-10.0)  # never "stop": every sentence runs TACOTRON_DECODER_STEPS steps
    torch.save({"model": state, "r": config.r}, folder / "model_file.pth")
    write_scale_stats(folder / "scale_stats.npy", config.audio)
    config.audio.stats_path = str(folder / "scale_stats.npy")
    config.save_json(str(folder / "config.json"))

    vocoder_folder = coqui_folder(tts_home, coqui_entry(models.TACOTRON2)["default_vocoder"])
    vocoder_config = HifiganConfig(audio=tiny_audio_config())
    vocoder_config.generator_model_params.update(upsample_initial_channel=32, resblock_kernel_sizes=[3],
                                                 resblock_dilation_sizes=[[1, 3, 5]])
    vocoder = setup_model(vocoder_config)
    # The released vocoders keep the generator under "model" and the discriminator under "model_disc";
    # coqui's GAN.load_checkpoint then loads only the generator. The discriminator (70 M parameters, for
    # training only) is left out: "model_disc" stays empty.
    torch.save({"model": vocoder.model_g.state_dict(), "model_disc": {}}, vocoder_folder / "model_file.pth")
    vocoder_config.save_json(str(vocoder_folder / "config.json"))
    return folder, vocoder_folder


# coqui-tts: XTTS-v2 (a Hugging Face repository) ----------------------------------------------------------
XTTS_SPEAKER = "Claribel Dervla"  # the first of XTTS-v2's built-in speakers


def xtts_vocab(path: Path, languages) -> Path:
    """XTTS's ``vocab.json``: coqui's bundled Tortoise BPE plus ``[START]`` and a ``[lang]`` token per language."""
    from tokenizers import Tokenizer

    import TTS

    bpe = Tokenizer.from_file(str(Path(TTS.__file__).parent / "tts/utils/assets/tortoise/tokenizer.json"))
    bpe.add_special_tokens(["[START]"] + [f"[{language}]" for language in languages])
    bpe.save(str(path))
    return path


def build_xtts(hub_cache: Path, tts_home: Path) -> Path:
    """XTTS-v2 at tts-hub/XTTS-v2 in the Hugging Face cache, and the licence agreement of the tiny hub."""
    import soundfile
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts, XttsArgs

    entry = coqui_entry(models.XTTS_V2)
    folder = snapshot(hub_cache, models.HubModel(entry["repo_id"], "main", "coqui-tts"))
    config = XttsConfig(model_args=XttsArgs(
        gpt_layers=1, gpt_n_model_channels=32, gpt_n_heads=2, decoder_input_dim=32, gpt_max_audio_tokens=40,
        gpt_max_text_tokens=64, gpt_max_prompt_tokens=16))  # XttsConfig's default: XTTS-v2's 17 languages
    vocab = xtts_vocab(folder / "vocab.json", config.languages)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(str(vocab))
    model.init_models()  # sizes the GPT's text embedding from the vocabulary
    model.eval()
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    config.save_json(str(folder / "config.json"))

    tone = 0.3 * np.sin(2 * np.pi * 180 * np.arange(22050 * 2) / 22050).astype(np.float32)
    soundfile.write(folder / "speaker.wav", tone, 22050)
    latent, embedding = model.get_conditioning_latents(audio_path=str(folder / "speaker.wav"))
    (folder / "speaker.wav").unlink()
    torch.save({XTTS_SPEAKER: {"gpt_cond_latent": latent, "speaker_embedding": embedding}},
               folder / "speakers_xtts.pth")

    if entry.get("tos_required"):  # coqui asks for the CPML before a download; these weights are not the model
        agreed = coqui_folder(tts_home, models.XTTS_V2) / "tos_agreed.txt"
        agreed.write_text("tiny hub: random weights, not the CPML-licensed XTTS-v2; written by "
                          "scripts/tiny_hub/speech.py so that tests run headless\n")
    return folder


# transformers: WavLM speaker verification ----------------------------------------------------------------
def build_wavlm(hub_cache: Path) -> Path:
    """``microsoft/wavlm-base-plus-sv``: a tiny ``WavLMForXVector`` and its ``Wav2Vec2FeatureExtractor``."""
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    config = WavLMConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        tdnn_dim=(16, 16, 16, 16, 32), xvector_output_dim=16, num_buckets=32, max_bucket_distance=64,
        architectures=["WavLMForXVector"])
    model = WavLMForXVector(config).eval()
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                         do_normalize=False, return_attention_mask=True)
    return save_to_hub(hub_cache, models.WAVLM_SPEAKER, model, extractor)


def build(environment: dict[str, str]) -> None:
    """Write this family's tiny checkpoints into the caches that ``environment`` names."""
    hub_cache = Path(environment["HF_HUB_CACHE"])
    tts_home = Path(environment["TTS_HOME"])
    build_whisper(Path(environment["XDG_CACHE_HOME"]) / "whisper")
    build_tacotron(tts_home)
    build_xtts(hub_cache, tts_home)
    build_wavlm(hub_cache)
