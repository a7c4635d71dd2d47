"""Profile, device, dtype and seed set-up: the first code cell of every notebook.

    cfg = helpers.setup()

The **small** profile runs on a CPU, offline, in minutes; the **full** profile
runs the real models a chapter is about on a CUDA GPU with internet access.
The environment variable ``GENAI_PROFILE=small|full`` overrides the default
(``full`` when a CUDA GPU is present, else ``small``).

``GENAI_PROFILE=full GENAI_HUB=tiny`` runs the full profile's unchanged code on
the **tiny hub** (``make tiny-hub``): random-weight, tiny-config checkpoints
saved at the real model ids, on a CPU or a GPU, offline. It proves that the
full profile's code runs; its numbers are noise, so the cells skip the asserts
that need trained weights (``cfg.trained_weights(...)``) and say so.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROFILES = ("small", "full")
HUB_HOST = "huggingface.co"
COLAB_GPU_HINT = (
    "On Colab: Runtime → Change runtime type → T4 GPU, then run the notebook again."
)
HUB_MODES = ("real", "tiny")  # $GENAI_HUB: the real model hub, or the course's tiny random-weight one
REPO_ROOT = Path(__file__).resolve().parent.parent

# Set by setup(); read by helpers.results to time the notebook.
started_at: float | None = None


@dataclass(frozen=True)
class Config:
    """What a notebook needs to know about where it runs."""

    profile: str  # "small" (CPU, offline) or "full" (GPU, real models)
    device: str  # "cuda" or "cpu" (the full profile needs CUDA; the small one runs on the CPU)
    dtype: torch.dtype  # bfloat16 / float16 on GPUs, float32 on the CPU
    seed: int  # python, numpy and torch were seeded with it
    threads: int  # torch CPU threads
    gpu_memory_gib: float  # total memory of GPU 0 in GiB (2**30 bytes); 0.0 without a CUDA GPU
    tiny_hub: bool = False  # full profile on random-weight tiny checkpoints (make tiny-hub): numbers are noise

    @property
    def small(self) -> bool:
        return self.profile == "small"

    @property
    def full(self) -> bool:
        return self.profile == "full"

    def pick(self, small, full, tiny_hub=None):
        """Return ``small`` or ``full`` by profile: ``steps = cfg.pick(200, 5000)``.

        ``tiny_hub``, when given, replaces ``full`` on the tiny hub, where the full
        profile's code runs on a CPU: fewer steps and pixels, the same code."""
        if self.small:
            return small
        return tiny_hub if self.tiny_hub and tiny_hub is not None else full

    def trained_weights(self, claim: str) -> bool:
        """True when the run can measure ``claim``: trained weights, and the chapter's sample sizes.

        On the tiny hub (random weights; fewer samples and steps through ``pick``) it prints that
        ``claim`` is skipped and returns False:
        ``if cfg.trained_weights("WER below 0.3"): assert wer < 0.3``."""
        if self.tiny_hub:
            print(f"tiny hub (random weights, fewer samples and steps): not asserted: {claim}")
            return False
        return True

    def summary(self) -> str:
        gpu = f"{self.gpu_memory_gib:.1f} GiB GPU" if self.gpu_memory_gib else "no GPU"
        dtype = str(self.dtype).replace("torch.", "")
        line = (
            f"profile={self.profile} device={self.device} dtype={dtype} "
            f"seed={self.seed} threads={self.threads} ({gpu})"
        )
        if self.tiny_hub:
            line += f" | tiny hub {tiny_hub_dir()}: RANDOM WEIGHTS, every model output below is noise"
        return line


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
    return "cuda" if torch.cuda.is_available() else "cpu"


def choose_dtype(device: str) -> torch.dtype:
    """bfloat16 on GPUs that support it (Ampere+), float16 on older CUDA (T4), fp32 on CPU.

    ``including_emulation=False``: a T4 emulates bfloat16 (slowly), and counts as not having it."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return torch.float32


NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX512-BF16 and AMX; Arm's BF16


@functools.cache
def fast_cpu_dtype(cpuinfo: Path = Path("/proc/cpuinfo")) -> torch.dtype:
    """bfloat16 where the CPU computes it natively (AVX512-BF16, AMX, Arm BF16), else fp32.

    A CPU without those instructions emulates bfloat16, several times slower than fp32; with them, a matrix
    product takes about half as long and half the bytes to read make decoding faster. Read from the CPU's
    flags (``cpuinfo``: Linux's ``flags`` / ``Features`` lines; fp32 where there is no such file), not
    timed: a timing on shared cores can come out either way from one run to the next.
    """
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return torch.float32
    flags = {word for line in lines if line.split(":")[0].strip() in ("flags", "Features")
             for word in line.split(":", 1)[-1].split()}
    return torch.bfloat16 if flags & NATIVE_BFLOAT16_FLAGS else torch.float32


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the model hub opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def choose_hub(requested: str | None = None) -> str:
    """``"real"`` (the model hub) or ``"tiny"`` (the course's random-weight hub), from ``$GENAI_HUB``."""
    hub = (requested or os.environ.get("GENAI_HUB") or "real").strip().lower()
    if hub not in HUB_MODES:
        raise ValueError(f"Unknown GENAI_HUB={hub!r}: use GENAI_HUB=tiny (random-weight test hub) or leave it unset.")
    return hub


def tiny_hub_dir() -> Path:
    """Where ``make tiny-hub`` writes the tiny hub: ``$GENAI_TINY_HUB_DIR``, else ``build/tiny-hub``."""
    return Path(os.environ.get("GENAI_TINY_HUB_DIR") or REPO_ROOT / "build" / "tiny-hub").resolve()


def tiny_hub_environment(root: Path) -> dict[str, str]:
    """The environment variables that point every model cache at the tiny hub in ``root``, offline.

    Hugging Face (transformers, diffusers, sentence-transformers), torch's hub (FID's Inception
    weights), openai-whisper and datasets (``$XDG_CACHE_HOME``), coqui-tts (``$TTS_HOME``)."""
    return {
        "HF_HOME": str(root / "huggingface"),
        "HF_HUB_CACHE": str(root / "huggingface" / "hub"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TORCH_HOME": str(root / "torch"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "TTS_HOME": str(root / "tts"),
    }


def use_tiny_hub(root: Path) -> None:
    """Point every cache at the tiny hub (see ``tiny_hub_environment``), or say how to build it."""
    if not (root / "COMPLETE").is_file():
        raise RuntimeError(
            f"GENAI_HUB=tiny, but there is no complete tiny hub at {root}. Build it with `make tiny-hub` "
            "(about a minute), or unset GENAI_HUB to use the real model hub."
        )
    environment = tiny_hub_environment(root)
    if "huggingface_hub" in sys.modules:  # it reads its cache path once, at import
        from huggingface_hub import constants

        if constants.HF_HUB_CACHE != environment["HF_HUB_CACHE"]:
            raise RuntimeError("huggingface_hub was imported before helpers.setup(): restart the kernel and "
                               "run the set-up cell first (or export the tiny hub's variables: make test-full-smoke).")
    os.environ.update(environment)
    trust_tiny_whisper_checkpoints(root)


def trust_tiny_whisper_checkpoints(root: Path) -> None:
    """Let ``whisper.load_model`` take the tiny hub's checkpoints (tiny hub only).

    openai-whisper checks every checkpoint file against the SHA-256 in its download URL, and a
    random-weight file cannot match it: for files inside the tiny hub, and only there, the check
    is skipped. This is the only library function the tiny hub replaces."""
    import whisper

    root = root.resolve()
    original = getattr(whisper._download, "__wrapped__", whisper._download)

    def download(url: str, download_root: str, in_memory: bool):
        path = Path(download_root) / Path(url).name
        if path.is_file() and root in path.resolve().parents:
            return path.read_bytes() if in_memory else str(path)
        return original(url, download_root, in_memory)

    download.__wrapped__ = original
    whisper._download = download


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
    asked for without a CUDA GPU or without access to the model hub. With
    ``GENAI_HUB=tiny`` the full profile runs on the tiny hub, on any device.
    """
    global started_at
    started_at = time.time()
    cuda = torch.cuda.is_available()
    chosen = choose_profile(profile, cuda)
    tiny_hub = chosen == "full" and choose_hub() == "tiny"
    if tiny_hub:
        use_tiny_hub(tiny_hub_dir())
    elif chosen == "full":
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
        gpu_memory_gib=round(gpu_gb, 1),
        tiny_hub=tiny_hub,
    )
    print(cfg.summary())
    return cfg
