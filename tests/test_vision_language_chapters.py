"""Chapters 03 and 10 on real GPUs: bitsandbytes before diffusers, GPU memory thresholds in GiB, registry ids.

These read the notebooks' code (no execution): what each GPU would load is decided by a few constants,
evaluated here for the GPUs students have (``cfg.gpu_memory_gib`` as torch reports them).
"""

import json
import re
from types import SimpleNamespace

import pytest

from conftest import REPO_ROOT

CHAPTERS = {"03": "03_text_to_image_and_vlms.ipynb", "10": "10_capstone_product_analyzer.ipynb"}
# total memory as torch reports it, in GiB (2**30 bytes)
T4, L4, A100_40GB, A100_80GB = 14.7, 22.2, 39.4, 79.1


def code_cells(chapter: str) -> list[str]:
    notebook = json.loads((REPO_ROOT / "notebooks" / CHAPTERS[chapter]).read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]


def first_cell(cells: list[str], pattern: str) -> int:
    return next(index for index, source in enumerate(cells) if re.search(pattern, source))


class Profile:
    """What the notebooks read of ``cfg``: the full profile on a CUDA GPU of ``gib`` GiB (or the tiny hub)."""

    def __init__(self, gib: float, device: str = "cuda", tiny_hub: bool = False):
        self.full, self.small, self.device, self.gpu_memory_gib, self.tiny_hub = True, False, device, gib, tiny_hub

    def pick(self, small, full, tiny_hub=None):
        return tiny_hub if self.tiny_hub and tiny_hub is not None else full


def memory_plan(chapter: str, cfg: Profile) -> SimpleNamespace:
    """Run the notebook's lines that set the GiB thresholds and FLUX_IN_4BIT, with ``cfg``."""
    lines = [line for source in code_cells(chapter) for line in source.splitlines()
             if re.match(r"(\w+_GIB|FLUX_IN_4BIT) = ", line)]
    namespace = {"cfg": cfg}
    exec("\n".join(lines), namespace)
    return SimpleNamespace(**{name: value for name, value in namespace.items() if name != "cfg" and name.isupper()})


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_bitsandbytes_is_installed_before_diffusers_is_imported(chapter):
    cells = code_cells(chapter)
    installs = [index for index, source in enumerate(cells) if re.search(r"pip.*install.*bitsandbytes", source)]
    assert installs, "the 4-bit FLUX path needs bitsandbytes installed"
    assert max(installs) < first_cell(cells, r"(?m)^\s*(from|import) diffusers|helpers import text_to_image"), \
        "diffusers caches whether bitsandbytes is installed when it is imported: install it first"
    setup = cells[installs[0]]
    assert "helpers.setup" in setup and "FLUX_IN_4BIT" in setup  # on a CUDA GPU that takes the 4-bit path only
    assert not re.search(r"^\s*%pip install -q bitsandbytes", setup.split('if "google.colab"')[1].split("import helpers")[0],
                         flags=re.M), "not on every Colab runtime: only where FLUX runs in 4-bit"


@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
@pytest.mark.parametrize("gib, four_bit", [(T4, True), (L4, True), (A100_80GB, False)])
def test_flux_precision_by_gpu_memory(chapter, gib, four_bit):
    assert memory_plan(chapter, Profile(gib)).FLUX_IN_4BIT is four_bit


def test_an_a100_40gb_runs_flux_in_bfloat16_in_chapter_03():
    assert memory_plan("03", Profile(A100_40GB)).FLUX_IN_4BIT is False  # 31.4 GiB of weights fit 39.4 GiB


def test_the_tiny_hub_on_a_cpu_takes_no_4bit_path():
    assert memory_plan("03", Profile(0.0, "cpu", tiny_hub=True)).FLUX_IN_4BIT is False
    assert memory_plan("10", Profile(0.0, "cpu", tiny_hub=True)).FLUX_IN_4BIT is False


@pytest.mark.parametrize("gib, asked", [(T4, False), (L4, True), (A100_40GB, True)])
def test_idefics2_runs_on_a_24gb_gpu(gib, asked):
    plan = memory_plan("03", Profile(gib))
    cell = next(source for source in code_cells("03") if "from_pretrained(models.IDEFICS2.repo_id" in source)
    assert "if cfg.full and cfg.gpu_memory_gib >= IDEFICS2_GIB:" in cell
    assert (gib >= plan.IDEFICS2_GIB) is asked


def test_smolvlm_leaves_the_gpu_before_idefics2_loads():
    source = next(source for source in code_cells("03") if "from_pretrained(models.IDEFICS2.repo_id" in source)
    freed, loaded = source.index('vlm.to("cpu")'), source.index("from_pretrained(models.IDEFICS2.repo_id")
    assert freed < source.index("torch.cuda.empty_cache()") < loaded


@pytest.mark.parametrize("chapter", ["03", "05", "10"])
def test_no_model_id_constants_or_old_names(chapter):
    path = REPO_ROOT / "notebooks" / {**CHAPTERS, "05": "05_multimodal_clip.ipynb"}[chapter]
    code = "\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]
                     if cell["cell_type"] == "code")
    assert not re.search(r"gpu_memory_gb\b|torch_dtype=|AutoModelForVision2Seq|_ID = \"", code)
    assert not re.search(r"from_pretrained\(\"", code), "model ids come from helpers.models"
