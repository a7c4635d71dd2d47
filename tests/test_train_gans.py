"""Chapter 01's GAN checkpoints (data/gans/, made by scripts/train_gans.py): present, small, loadable,
and trained for the step counts the notebook's constants name (a changed constant needs `make checkpoints`)."""

import json
import re

import pytest
import torch

from conftest import REPO_ROOT

CHECKPOINT_DIR = REPO_ROOT / "data" / "gans"
NOTEBOOK = REPO_ROOT / "notebooks" / "01_gans.ipynb"
# notebook constant prefix -> checkpoint name
MODELS = {"VANILLA": "vanilla", "DCGAN": "dcgan", "CGAN": "cgan", "WGAN": "wgan_gp", "STYLE": "stylegan"}


def small_profile_long_steps() -> dict:
    """{'vanilla': 3000, ...}, read from the notebook's constants cell:
    NAME_LIVE_STEPS, NAME_STEPS = cfg.pick(small=(live, long), ...)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    source = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    pattern = re.compile(r"(\w+)_LIVE_STEPS, \1_STEPS = cfg\.pick\(small=\(([\d_]+), ([\d_]+)\)")
    return {MODELS[name]: int(long.replace("_", "")) for name, _, long in pattern.findall(source)}


def test_the_notebook_names_every_long_run():
    assert set(small_profile_long_steps()) == set(MODELS.values())


@pytest.mark.parametrize("name", MODELS.values())
def test_checkpoint_is_small_loadable_and_current(name):
    path = CHECKPOINT_DIR / f"{name}.pt"
    assert path.is_file(), f"{path} is missing: run `make checkpoints`"
    assert path.stat().st_size < 5 * 2**20
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["command"] == "python scripts/train_gans.py"
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())
    record = checkpoint["record"]
    assert record["steps"] == small_profile_long_steps()[name], "stale checkpoint: run `make checkpoints`"
    assert record["fid_steps"][-1] == record["steps"] and len(record["fids"]) == len(record["fid_steps"])
    assert record["best_step"] in record["fid_steps"]
