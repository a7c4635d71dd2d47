"""Profile, device, dtype and seed set-up: the first code cell of every notebook.

    cfg = helpers.setup()

The **small** profile runs on a CPU, offline, in minutes; the **full** profile
runs the real models a chapter is about on a CUDA GPU with internet access.
The environment variable ``GENAI_PROFILE=small|full`` overrides the default
(``full`` when a CUDA GPU is present, else ``small``).
"""

from __future__ import annotations

import os
import random
import socket
import time
from dataclasses import dataclass

import numpy as np
import torch

PROFILES = ("small", "full")
HUB_HOST = "huggingface.co"
COLAB_GPU_HINT = (
    "On Colab: Runtime → Change runtime type → T4 GPU, then run the notebook again."
)

# Set by setup(); read by helpers.results to time the notebook.
started_at: float | None = None


@dataclass(frozen=True)
class Config:
    """What a notebook needs to know about where it runs."""

    profile: str  # "small" (CPU, offline) or "full" (GPU, real models)
    device: str  # "cuda", "mps" or "cpu"
    dtype: torch.dtype  # bfloat16 / float16 on GPUs, float32 on the CPU
    seed: int  # python, numpy and torch were seeded with it
    threads: int  # torch CPU threads
    gpu_memory_gb: float  # total memory of GPU 0; 0.0 without a CUDA GPU

    @property
    def small(self) -> bool:
        return self.profile == "small"

    @property
    def full(self) -> bool:
        return self.profile == "full"

    def pick(self, small, full):
        """Return ``small`` or ``full`` by profile: ``steps = cfg.pick(200, 5000)``."""
        return small if self.small else full

    def summary(self) -> str:
        gpu = f"{self.gpu_memory_gb:.1f} GB GPU" if self.gpu_memory_gb else "no GPU"
        dtype = str(self.dtype).replace("torch.", "")
        return (
            f"profile={self.profile} device={self.device} dtype={dtype} "
            f"seed={self.seed} threads={self.threads} ({gpu})"
        )


def choose_profile(requested: str | None, cuda_available: bool) -> str:
    """The profile to run: ``requested`` (or ``$GENAI_PROFILE``), else by hardware."""
    requested = requested or os.environ.get("GENAI_PROFILE") or None
    if requested is None:
        return "full" if cuda_available else "small"
    profile = requested.strip().lower()
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown profile {requested!r}. Use GENAI_PROFILE=small (CPU, offline, "
            "minutes) or GENAI_PROFILE=full (CUDA GPU and internet), or unset it to "
            "choose by hardware."
        )
    return profile


def choose_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def choose_dtype(device: str) -> torch.dtype:
    """bfloat16 on GPUs that support it (Ampere+), float16 on older CUDA (T4), fp32 on CPU."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the model hub opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def default_threads() -> int:
    """One thread on small machines: two threads on two shared cores can stall."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(cores, 8)


def setup(seed: int = 0, profile: str | None = None, threads: int | None = None) -> Config:
    """Choose profile, device and dtype; seed everything; print one line; return a Config.

    Raises a ``RuntimeError`` that says what to do when the full profile is
    asked for without a CUDA GPU or without access to the model hub.
    """
    global started_at
    started_at = time.time()
    cuda = torch.cuda.is_available()
    chosen = choose_profile(profile, cuda)
    if chosen == "full":
        if not cuda:
            raise RuntimeError(
                "The full profile needs a CUDA GPU and none was found. "
                f"{COLAB_GPU_HINT} Or run the small profile: GENAI_PROFILE=small."
            )
        if os.environ.get("HF_HUB_OFFLINE") == "1" or not hub_reachable():
            raise RuntimeError(
                f"The full profile downloads models from {HUB_HOST}, which cannot be "
                "reached (or HF_HUB_OFFLINE=1 is set). Connect to the internet, or run "
                "the small profile: GENAI_PROFILE=small."
            )
    else:
        # Fail fast and clearly if anything tries to download a model.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"

    device = choose_device() if chosen == "full" else "cpu"
    n_threads = threads or default_threads()
    torch.set_num_threads(n_threads)
    seed_everything(seed)
    gpu_gb = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 0.0
    cfg = Config(
        profile=chosen,
        device=device,
        dtype=choose_dtype(device),
        seed=seed,
        threads=n_threads,
        gpu_memory_gb=round(gpu_gb, 1),
    )
    print(cfg.summary())
    return cfg
