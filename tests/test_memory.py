"""helpers.memory: memory freed by Python/PyTorch goes back to the system."""

import platform

import numpy as np
import pytest

from helpers import memory


@pytest.mark.skipif(platform.system() != "Linux", reason="malloc_trim is glibc's")
def test_release_memory_returns_freed_heap_memory():
    blocks = [np.ones(8_000) for _ in range(4_000)]  # 4,000 × 64 kB: small blocks live on malloc's heap
    kept = blocks[::10]  # every tenth stays alive, so the freed ones are holes malloc keeps by itself
    del blocks
    released = memory.release_memory()
    assert released > 100, f"only {released:.0f} MB released"
    assert len(kept) == 400


def test_release_memory_is_harmless_when_nothing_was_freed():
    assert memory.release_memory() >= 0 and memory.rss_mb() > 0


def test_gpu_peak_is_none_without_cuda_and_touches_no_cuda_function(monkeypatch):
    import torch

    def no_cuda(*args, **kwargs):
        raise AssertionError("a CUDA function was called without CUDA")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", no_cuda)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", no_cuda)
    memory.reset_gpu_peak()
    assert memory.gpu_peak_gib() is None


def test_gpu_peak_measures_from_the_last_reset(monkeypatch):
    import torch

    allocator = {"peak": 9 * 2**30}  # 9 GiB held by an earlier part of the notebook
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: allocator.update(peak=2**30))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: allocator["peak"])
    memory.reset_gpu_peak()
    assert memory.gpu_peak_gib() == 1.0
