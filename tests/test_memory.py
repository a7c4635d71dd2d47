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
