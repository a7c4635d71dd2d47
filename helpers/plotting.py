"""Pictures and sounds: image grids, training curves, spectrograms, audio players."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def show_images(images: torch.Tensor, nrow: int = 10, title: str | None = None,
                ax=None, value_range: tuple[float, float] = (-1, 1)):
    """Show a batch ``(N, C, H, W)`` as one grid; values in ``value_range`` (default [-1, 1])."""
    from torchvision.utils import make_grid

    images = images.detach().float().cpu()
    low, high = value_range
    grid = make_grid((images - low) / (high - low), nrow=nrow, padding=1, pad_value=1.0)
    if ax is None:
        width = min(12, 0.6 * nrow + 1)
        _, ax = plt.subplots(figsize=(width, width * grid.shape[1] / grid.shape[2]))
    ax.imshow(grid.clamp(0, 1).permute(1, 2, 0).numpy(), cmap="gray", interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def plot_curves(curves: Mapping[str, Sequence[float]], xlabel: str = "step",
                ylabel: str = "loss", title: str | None = None, ax=None, logy: bool = False):
    """Plot named series on one set of axes: ``plot_curves({"G": g_losses, "D": d_losses})``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in curves.items():
        ax.plot(np.asarray(values, dtype=float), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_spectrogram(waveform: np.ndarray, sample_rate: int, title: str | None = None,
                     ax=None, n_mels: int = 80):
    """Log-mel spectrogram (dB) of a mono waveform, as speech models see it."""
    import librosa
    import librosa.display

    mel = librosa.feature.melspectrogram(y=np.asarray(waveform, dtype=np.float32),
                                         sr=sample_rate, n_fft=400, hop_length=160, n_mels=n_mels)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    image = librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sample_rate,
                                     hop_length=160, x_axis="time", y_axis="mel", ax=ax)
    plt.colorbar(image, ax=ax, format="%+.0f dB")
    if title:
        ax.set_title(title)
    return ax


MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)


def audio_player(waveform: np.ndarray, sample_rate: int):
    """An inline player (``IPython.display.Audio``) for a mono waveform in [-1, 1], embedded as MP3.

    MP3 is about a tenth of the size of the WAV that ``Audio`` would embed, so a notebook with several clips
    stays small on GitHub, and every browser plays it. Only MP3's sample rates are accepted."""
    import io

    import soundfile
    from IPython.display import Audio

    if sample_rate not in MP3_SAMPLE_RATES:
        raise ValueError(f"MP3 cannot hold {sample_rate} Hz: resample to one of {MP3_SAMPLE_RATES} first "
                         "(helpers.speech.resample).")
    mp3 = io.BytesIO()
    soundfile.write(mp3, np.clip(np.asarray(waveform, dtype=np.float32), -1, 1), sample_rate, format="MP3")
    player = Audio(data=mp3.getvalue())
    player.mimetype = "audio/mpeg"  # Audio calls raw bytes WAV
    return player
