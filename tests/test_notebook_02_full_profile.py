"""Chapter 02's full profile (never run by CI on a GPU): the memory defects stay fixed, the registry is used.

The tiny hub runs these cells on a CPU (make test-full-smoke); what only a CUDA GPU would show is checked
here in the source: peak memory is measured from a reset, SD 1.5 is freed before SD 3.5 loads, no attention
slicing on top of PyTorch 2's attention, GPU memory in GiB."""

import json
import re

import pytest

from conftest import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "02_diffusion.ipynb"


def code_cells(path=NOTEBOOK) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


@pytest.fixture(scope="module")
def cells():
    return code_cells()


def cell_with(cells, text: str) -> str:
    (found,) = [cell for cell in cells if text in cell]
    return found


def test_no_attention_slicing_and_no_deprecated_names(cells):
    code = "\n".join(cells)
    assert "enable_attention_slicing(" not in code  # slows PyTorch 2's SDPA, saves nothing
    assert "gpu_memory_gb" not in code and "torch_dtype=" not in code


def test_peak_gpu_memory_is_measured_from_a_reset_and_only_on_cuda(cells):
    assert not any("torch.cuda.max_memory_allocated" in cell for cell in cells)  # helpers.memory: None on a CPU
    definition = re.compile(r"\n\s*def peak_memory\(\).*?\n\s*return [^\n]*", re.S)
    readers = [definition.sub("", cell) for cell in cells if "peak_memory()" in definition.sub("", cell)]
    assert len(readers) == 3  # SD 1.5, its img2img, SD 3.5
    for cell in readers:  # each part resets the peak before it reads it
        assert "reset_gpu_peak()" in cell and cell.index("reset_gpu_peak()") < cell.rindex("peak_memory()")


def test_stable_diffusion_15_is_freed_before_sd35_loads(cells):
    cell = cell_with(cells, "StableDiffusion3Pipeline.from_pretrained(")
    load = cell.index("StableDiffusion3Pipeline.from_pretrained(")
    assert re.search(r"del sd15, sd_img2img\b", cell[:load]) and "release_memory()" in cell[:load]


def test_full_profile_loads_through_the_registry(cells):
    code = "\n".join(cells)
    for name in ("STABLE_DIFFUSION_15", "STABLE_DIFFUSION_35_MEDIUM"):
        assert f"models.{name}.repo_id, revision=models.{name}.revision" in code
    assert "SD35_WITH_T5_GIB" in cell_with(cells, "small_gpu =") and 'DEVICE == "cuda"' in cell_with(cells, "small_gpu =")

