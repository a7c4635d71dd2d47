"""Give freed memory back to the operating system, between the parts of a notebook.

When PyTorch frees a CPU tensor, the C allocator (glibc's malloc on Linux)
usually keeps the memory for later reuse instead of returning it: after
training a model and deleting it, the process can still hold a gigabyte it
no longer uses. Memory freed in one thread is not reused by others (each has
its own pool), so a notebook that trains in the main thread and then serves
a model from worker threads (``helpers.llm_server``) adds the two up.
``release_memory()`` collects garbage, empties the CUDA cache, and asks
glibc to return free pages (``malloc_trim``); elsewhere it does what it can.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

import psutil


def rss_mb() -> float:
    """This process's resident memory, in MB."""
    return psutil.Process(os.getpid()).memory_info().rss / 1e6


def release_memory() -> float:
    """Free what Python and PyTorch no longer use, and return it to the system; the MB released."""
    before = rss_mb()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
    library = ctypes.util.find_library("c")
    if library:
        try:
            ctypes.CDLL(library).malloc_trim(0)  # glibc only; other C libraries lack it
        except (OSError, AttributeError):
            pass
    return max(0.0, before - rss_mb())


def reset_gpu_peak() -> None:
    """Start a new peak measurement of CUDA memory (``torch.cuda.reset_peak_memory_stats()``); nothing without CUDA.

    ``torch.cuda.max_memory_allocated()`` reports the most memory held *since the last reset* (or since the
    process started): reset it before each part you measure, or you measure everything that ran before."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_gib() -> float | None:
    """The most CUDA memory tensors held since ``reset_gpu_peak()``, in GiB (2**30 bytes); None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**30
