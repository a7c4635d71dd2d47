"""helpers.plotting draws without a display and returns what a notebook shows."""

import numpy as np
import pytest
import torch
from IPython.display import Audio

from helpers.plotting import audio_player, plot_curves, plot_spectrogram, show_images


def test_show_images_grid():
    ax = show_images(torch.rand(12, 1, 16, 16) * 2 - 1, nrow=6, title="grid")
    assert ax.get_title() == "grid" and len(ax.images) == 1


def test_plot_curves_one_line_per_series():
    ax = plot_curves({"G": [3, 2, 1], "D": [1, 1, 1]}, logy=True)
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"


def test_spectrogram_and_player():
    sample_rate = 16000
    tone = np.sin(2 * np.pi * 440 * np.arange(sample_rate) / sample_rate).astype(np.float32)
    assert plot_spectrogram(tone, sample_rate, title="tone").get_title() == "tone"
    player = audio_player(tone, sample_rate)
    assert isinstance(player, Audio) and 'type="audio/mpeg"' in player._repr_html_()
    wav_bytes = 2 * sample_rate  # one second of 16-bit PCM
    assert len(player.data) < wav_bytes / 5, "MP3 should be far smaller than the WAV it replaces"
    with pytest.raises(ValueError, match="resample"):
        audio_player(tone, 22_000)
