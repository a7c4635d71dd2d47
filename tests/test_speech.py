"""Unit tests of helpers.speech: espeak synthesis, audio loading errors, WER, the consent gate."""

import shutil
from datetime import date, timedelta

import numpy as np
import pytest
import soundfile

from helpers import speech
from helpers.speech import ConsentError, ConsentRecord, clone_voice

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture
def reference_wav(tmp_path):
    """A short 'recording' (a 220 Hz tone with a fade) saved as 16 kHz WAV."""
    rate = 16_000
    time = np.arange(rate) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * time) * np.hanning(rate)
    path = tmp_path / "reference.wav"
    soundfile.write(path, wave.astype(np.float32), rate)
    return path


def fake_cloner(text, reference_wav, language):
    """Stands in for XTTS: 0.5 s of a quiet tone at 24 kHz; records that it was called."""
    fake_cloner.calls += 1
    return 0.1 * np.sin(np.linspace(0, 200, 12_000)).astype(np.float32), 24_000


fake_cloner.calls = 0


# ---------------------------------------------------------------- synthesis and audio loading
@needs_espeak
def test_espeak_synthesis_is_16khz_mono_speech():
    wave = speech.synthesize_espeak("Hello world, this is a test.")
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 1.0 < len(wave) / 16_000 < 5.0
    assert np.abs(wave).max() > 0.05  # not silence
    slower = speech.synthesize_espeak("Hello world, this is a test.", words_per_minute=100)
    assert len(slower) > len(wave)


@needs_espeak
def test_espeak_phonemes_and_empty_text():
    assert speech.phonemes_espeak("hello") == "həlˈoʊ"
    with pytest.raises(ValueError, match="text"):
        speech.synthesize_espeak("   ")


def test_missing_espeak_says_how_to_install(monkeypatch):
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install"):
        speech.synthesize_espeak("hello")


def test_load_audio_resamples_and_mixes_to_mono(tmp_path):
    stereo = np.random.default_rng(0).uniform(-0.5, 0.5, size=(22_050, 2)).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 22_050)
    wave = speech.load_audio(path)
    assert wave.ndim == 1 and abs(len(wave) - 16_000) <= 1


def test_load_audio_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="No audio file"):
        speech.load_audio(tmp_path / "nowhere.wav")


def test_load_audio_corrupt_file_says_what_to_do(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00 this is not really audio")
    with pytest.raises(ValueError, match="ffmpeg"):
        speech.load_audio(path)


def test_load_audio_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(ValueError, match="no audio samples"):
        speech.load_audio(path)


# ---------------------------------------------------------------- word error rate
def test_wer_normalises_case_punctuation_and_numbers():
    assert speech.word_error_rate("The train leaves at seven.", "the train leaves at 7") == 0.0
    assert speech.word_error_rate("Hello, world!", "hello world") == 0.0
    # without normalisation the same pair has errors
    assert speech.word_error_rate("Hello, world!", "hello world", normalize=False) == 1.0


def test_wer_counts_substitutions_deletions_insertions():
    assert speech.word_error_rate("a b c d", "a x c d") == pytest.approx(0.25)  # 1 substitution
    assert speech.word_error_rate("a b c d", "a b c") == pytest.approx(0.25)  # 1 deletion
    assert speech.word_error_rate("a b c d", "a b c d e") == pytest.approx(0.25)  # 1 insertion
    # corpus WER pools the words of all sentences
    assert speech.word_error_rate(["a b", "c d e f g h"], ["a b", "c d e f g x"]) == pytest.approx(1 / 8)


def test_wer_rejects_mismatched_lengths_and_empty_references():
    with pytest.raises(ValueError, match="one transcript per reference"):
        speech.word_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        speech.word_error_rate(["!!", "um"], ["a", "b"])


# ---------------------------------------------------------------- the consent gate
def test_clone_refuses_without_consent(reference_wav):
    fake_cloner.calls = 0
    with pytest.raises(ConsentError, match="no consent record"):
        clone_voice(fake_cloner, "Say this.", reference_wav, consent=None)
    with pytest.raises(ConsentError, match="ConsentRecord"):
        clone_voice(fake_cloner, "Say this.", reference_wav, consent={"speaker": "Ada", "ok": True})
    assert fake_cloner.calls == 0  # the model never ran


def test_clone_refuses_consent_for_another_recording(reference_wav, tmp_path):
    other = tmp_path / "other.wav"
    soundfile.write(other, np.zeros(8000, dtype=np.float32) + 0.01, 16_000)
    consent = ConsentRecord.for_file(other, speaker="Ada", purpose="course demo")
    with pytest.raises(ConsentError, match="different recording"):
        clone_voice(fake_cloner, "Say this.", reference_wav, consent=consent)


def test_clone_refuses_expired_revoked_or_incomplete_consent(reference_wav):
    yesterday = date.today() - timedelta(days=1)
    base = ConsentRecord.for_file(reference_wav, speaker="Ada", purpose="course demo",
                                  granted_on=date.today() - timedelta(days=30))
    expired = ConsentRecord(**{**base.__dict__, "expires_on": yesterday})
    revoked = ConsentRecord(**{**base.__dict__, "revoked_on": yesterday})
    no_purpose = ConsentRecord(**{**base.__dict__, "purpose": " "})
    for record, message in ((expired, "expired"), (revoked, "revoked"), (no_purpose, "purpose")):
        with pytest.raises(ConsentError, match=message):
            clone_voice(fake_cloner, "Say this.", reference_wav, consent=record)


def test_clone_checks_the_reference_audio_first(tmp_path):
    consent = ConsentRecord("Ada", "0" * 64, "course demo", "Ada", date.today())
    with pytest.raises(FileNotFoundError, match="No audio file"):
        clone_voice(fake_cloner, "Say this.", tmp_path / "missing.wav", consent=consent)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="Could not read"):
        clone_voice(fake_cloner, "Say this.", broken, consent=consent)


def test_clone_with_consent_returns_disclosed_speech(reference_wav, tmp_path):
    fake_cloner.calls = 0
    consent = ConsentRecord.for_file(reference_wav, speaker="Ada", purpose="course demo")
    result = clone_voice(fake_cloner, "Say this.", reference_wav, consent=consent,
                         spoken_disclosure=False, generator="fake")
    assert fake_cloner.calls == 1
    assert result.sample_rate == 24_000 and len(result.waveform) == 12_000
    assert result.disclosure["synthetic"] is True and result.disclosure["speaker"] == "Ada"
    saved = result.save(tmp_path / "clone.wav")
    metadata = soundfile.SoundFile(str(saved)).copy_metadata()
    assert "synthetic" in metadata["title"].lower() and "speaker=Ada" in metadata["comment"]


@needs_espeak
def test_clone_prepends_a_spoken_disclosure(reference_wav):
    consent = ConsentRecord.for_file(reference_wav, speaker="Ada", purpose="course demo")
    result = clone_voice(fake_cloner, "Say this.", reference_wav, consent=consent)
    assert result.seconds > 0.5 + 2.0  # the clone plus a few seconds of spoken notice
    assert result.disclosure["spoken_disclosure"] is True
    start = round(result.disclosure["disclosure_seconds"] * result.sample_rate)
    assert abs((len(result.waveform) - start) - 12_000) <= 1  # the clone follows the notice


# ---------------------------------------------------------------- per-sentence errors and bootstrap intervals
def test_word_errors_per_sentence_add_up_to_the_corpus_wer():
    references, hypotheses = ["a b c d", "Hello, world!", "red green blue"], ["a x c d e", "hello world", ""]
    errors, words = speech.word_errors(references, hypotheses)
    assert errors.tolist() == [2, 0, 3] and words.tolist() == [4, 2, 3]  # normalised: "Hello, world!" = "hello world"
    assert errors.sum() / words.sum() == pytest.approx(speech.word_error_rate(references, hypotheses))
    with pytest.raises(ValueError, match="one transcript per reference"):
        speech.word_errors(["a", "b"], ["a"])


def test_wer_interval_brackets_the_wer_and_narrows_with_more_sentences():
    references = [f"{name} a b c" for name in ("red", "green", "blue", "cyan", "pink", "gold", "grey", "teal")]
    hypotheses = [ref if i % 2 else ref.replace(" a ", " x ") for i, ref in enumerate(references)]  # WER 0.125
    low, high = speech.wer_interval(references, hypotheses)
    assert 0.0 < low < 0.125 < high < 0.25
    wide = speech.wer_interval(references[:4], hypotheses[:4])
    many_low, many_high = speech.wer_interval(references * 8, hypotheses * 8)
    assert many_high - many_low < high - low < wide[1] - wide[0]
    assert speech.wer_interval(references, references) == (0.0, 0.0)  # no errors anywhere: nothing to resample


def test_wer_gap_interval_is_paired():
    references = [f"{name} a b c" for name in ("red", "green", "blue", "cyan", "pink", "gold", "grey", "teal")]
    worse = [ref.replace(" a ", " x ") for ref in references]  # one more error in every sentence: a gap of 0.25
    assert speech.wer_gap_interval(references, worse, references) == pytest.approx((0.25, 0.25))
    even = [ref if i % 2 else ref.replace(" a ", " x ") for i, ref in enumerate(references)]
    odd = [ref.replace(" a ", " x ") if i % 2 else ref for i, ref in enumerate(references)]
    low, high = speech.wer_gap_interval(references, even, odd)  # the same WER, from errors in other sentences
    assert low < 0 < high
