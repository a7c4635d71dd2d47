"""Chapter 04's full-profile code, read from the notebook: registry ids, the XTTS licence, the Whisper memory claim.

The tiny hub runs this code (make test-full-smoke); these fast checks pin what a random-weight run cannot show."""

import json
import re

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "04_speech.ipynb"


@pytest.fixture(scope="module")
def cells():
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return [("".join(cell["source"]), cell["cell_type"]) for cell in notebook["cells"]]


def code(cells):
    """The code cells without their comments (which may name a model in prose)."""
    source = "\n".join(source for source, kind in cells if kind == "code")
    return re.sub(r"#.*", "", source)


def test_full_profile_models_come_from_the_registry(cells):
    source = code(cells)
    for literal in ('"large-v3"', '"turbo"', '"tts_models/', '"microsoft/'):
        assert literal not in source, f"{literal} is spelled out: use helpers.models"
    for name in ("models.WHISPER_LARGE", "models.WHISPER_TURBO", "models.TACOTRON2", "models.XTTS_V2",
                 "models.WAVLM_SPEAKER.repo_id"):
        assert name in source
    assert "torch_dtype" not in source  # deprecated in transformers 5: dtype=


def test_the_xtts_licence_is_never_accepted_for_the_student(cells):
    """COQUI_TOS_AGREED may be set only after the notebook checked that the student accepted the CPML."""
    source = code(cells)
    assert 'XTTS_LICENCE_ACCEPTED = os.environ.get("COQUI_TOS_AGREED") == "1" or cfg.tiny_hub' in source
    [cell] = [text for text, kind in cells if kind == "code" and "xtts = TTS(models.XTTS_V2" in text]
    check, agree = cell.index("if not XTTS_LICENCE_ACCEPTED:"), cell.index('os.environ["COQUI_TOS_AGREED"] = "1"')
    assert check < cell.index("raise RuntimeError(", check) < agree < cell.index("TTS(models.XTTS_V2")


def test_the_whisper_memory_claim_counts_fp32_weights(cells):
    """large-v3: 1.55 B parameters x 4 bytes (load_model keeps fp32) ≈ 6.2 GB; fp16=True does not halve that."""
    [prose] = [text for text, kind in cells if kind == "markdown" and "whisper.load_model(models.WHISPER_LARGE)" in text]
    assert "halves that" not in prose and "~10 GB" not in code(cells)
    stated = float(re.search(r"1\.55 × 10⁹ × 4 B ≈ ([\d.]+) GB", prose).group(1))
    assert stated == pytest.approx(1.55e9 * 4 / 1e9, abs=0.05)
    assert "stay fp32" in prose


def test_fp16_decoding_leaves_whisper_weights_in_fp32():
    """What the prose says: DecodingOptions(fp16=True) computes in fp16, the stored weights stay fp32."""
    import whisper
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=16, n_text_state=16, n_text_head=2, n_text_layer=1)
    model = Whisper(dims).eval()
    mel = whisper.log_mel_spectrogram(np.zeros(16_000 * 30, dtype=np.float32)).half()
    result = whisper.decode(model, mel, whisper.DecodingOptions(fp16=True, language="en", sample_len=2))
    assert result.audio_features.dtype == torch.float16  # the activations are fp16 ...
    assert all(p.dtype == torch.float32 for p in model.parameters())  # ... the weights are not

