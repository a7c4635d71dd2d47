"""The tiny hub's speech family: built into a temporary hub, loaded offline with the real loaders.

openai-whisper's ``load_model``, coqui-tts's ``TTS(model_name)`` (through its ModelManager) and
transformers' ``from_pretrained``, each pointed at the tiny hub the way ``helpers.config`` points them."""

import sys

import numpy as np
import pytest
import soundfile
import torch

from conftest import REPO_ROOT
from helpers import models
from helpers.config import tiny_hub_environment, trust_tiny_whisper_checkpoints

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from tiny_hub import speech  # noqa: E402


@pytest.fixture(scope="module")
def hub(tmp_path_factory, one_torch_thread):
    """The speech family built into a fresh tiny hub: its root and environment."""
    root = tmp_path_factory.mktemp("tiny-hub").resolve()
    environment = tiny_hub_environment(root)
    speech.build(environment)
    trust_tiny_whisper_checkpoints(root)
    return root, environment


@pytest.fixture
def offline(hub, monkeypatch):
    """The tiny hub's environment, as ``helpers.setup()`` sets it (huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    root, environment = hub
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", environment["HF_HUB_CACHE"])
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


@pytest.mark.parametrize("name", [models.WHISPER_LARGE, models.WHISPER_TURBO])
def test_whisper_load_model_reads_the_tiny_checkpoint(offline, name):
    import whisper

    model = whisper.load_model(name, device="cpu")  # $XDG_CACHE_HOME/whisper, checksum skipped in the tiny hub
    assert model.dims.n_mels == 128 and model.is_multilingual and model.num_languages == 100
    assert model.dims.n_text_state <= 64 and model.dims.n_audio_layer == 1
    assert model.alignment_heads.to_dense().any()  # set from _ALIGNMENT_HEADS[name], the real mask
    wave = (0.1 * np.sin(np.arange(16_000) / 5)).astype(np.float32)
    result = model.transcribe(wave, language="en", word_timestamps=True, fp16=False, temperature=0.0)
    assert isinstance(result["text"], str) and {"segments", "language"} <= set(result)


def test_whisper_dims_fit_the_real_alignment_heads():
    """``set_alignment_heads`` reshapes the real mask to (n_text_layer, n_text_head): sizes must match."""
    import base64
    import gzip

    import whisper

    for name in (models.WHISPER_LARGE, models.WHISPER_TURBO):
        mask = gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS[name]))
        dims = speech.whisper_dims(name)
        assert len(mask) == dims.n_text_layer * dims.n_text_head, name


def test_whisper_checksum_is_checked_outside_the_tiny_hub(offline, tmp_path):
    """A file with the real name outside the tiny hub is not trusted: whisper checks it (and re-downloads)."""
    import whisper

    (tmp_path / "large-v3.pt").write_bytes((offline / "cache" / "whisper" / "large-v3.pt").read_bytes())
    with pytest.warns(UserWarning, match="SHA256"), pytest.raises(OSError):  # offline: the download fails
        whisper.load_model(models.WHISPER_LARGE, device="cpu", download_root=str(tmp_path))


def test_tacotron2_ddc_loads_with_its_hifigan_vocoder(offline):
    from TTS.api import TTS

    tts = TTS(models.TACOTRON2, progress_bar=False)
    synthesizer = tts.synthesizer
    assert type(synthesizer.tts_model).__name__ == "Tacotron2" and synthesizer.vocoder_model is not None
    assert synthesizer.tts_config.audio.stats_path.endswith("scale_stats.npy")  # ModelManager wrote its path
    wave = np.asarray(tts.tts("Turn left at the next corner."), dtype=np.float32)
    assert synthesizer.output_sample_rate == 22_050
    assert np.isfinite(wave).all() and len(wave) > 22_050 // 2


def test_xtts_v2_loads_from_the_hub_cache_without_a_prompt(offline, tmp_path, monkeypatch):
    from TTS.api import TTS

    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    monkeypatch.setattr("builtins.input", lambda *_: pytest.fail("coqui asked for the licence"))
    xtts = TTS(models.XTTS_V2, progress_bar=False)
    assert {"en", "de", "es"} <= set(xtts.languages) and xtts.speakers == [speech.XTTS_SPEAKER]
    tokenizer = xtts.synthesizer.tts_model.tokenizer
    for language in ("en", "de", "es"):
        assert tokenizer.tokenizer.token_to_id(f"[{language}]") is not None
    reference = tmp_path / "reference.wav"
    soundfile.write(reference, (0.2 * np.sin(np.arange(3 * 22_050) / 7)).astype(np.float32), 22_050)
    wave = np.asarray(xtts.tts(text="Hola.", speaker_wav=str(reference), language="es"), dtype=np.float32)
    assert xtts.synthesizer.output_sample_rate == 24_000 and np.isfinite(wave).all() and len(wave) > 0


def test_wavlm_speaker_verifier_gives_embeddings(offline):
    from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor, WavLMForXVector

    model = models.WAVLM_SPEAKER
    extractor = AutoFeatureExtractor.from_pretrained(model.repo_id, revision=model.revision)
    verifier = WavLMForXVector.from_pretrained(model.repo_id, revision=model.revision).eval()
    assert isinstance(extractor, Wav2Vec2FeatureExtractor) and verifier.config.hidden_size <= 32
    inputs = extractor(np.full(16_000, 0.01, dtype=np.float32), sampling_rate=16_000, return_tensors="pt")
    with torch.no_grad():
        embeddings = verifier(**inputs).embeddings
    assert embeddings.shape == (1, verifier.config.xvector_output_dim) and torch.isfinite(embeddings).all()
