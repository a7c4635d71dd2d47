"""Chapter 01's GAN checkpoints (data/gans/, made by scripts/train_gans.py with helpers.gans): present, small,
loadable into today's models, and trained with the settings the notebook's small profile names (a changed
constant needs `make checkpoints`); and the script itself, on a short run."""

import json
import re
import subprocess
import sys

import pytest
import torch

from conftest import REPO_ROOT
from helpers import gans

CHECKPOINT_DIR = REPO_ROOT / "data" / "gans"
NOTEBOOK = REPO_ROOT / "notebooks" / "01_gans.ipynb"
SCRIPT = REPO_ROOT / "scripts" / "train_gans.py"
# notebook constant prefix -> checkpoint name (runs with a live run: NAME_LIVE_STEPS, NAME_STEPS)
MODELS = {"VANILLA": "vanilla", "DCGAN": "dcgan", "CGAN": "cgan", "WGAN": "wgan_gp", "STYLE": "stylegan"}
LONG_ONLY = {"WGAN_CLIP_STEPS": "wgan_clip"}  # runs the notebook only loads: NAME_STEPS = cfg.pick(small=...)


def notebook_code() -> str:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def small_profile_long_steps() -> dict:
    """{'vanilla': 3000, ...}, read from the notebook's constants cell:
    NAME_LIVE_STEPS, NAME_STEPS = cfg.pick(small=(live, long), ...), and NAME_STEPS = cfg.pick(small=long, ...)."""
    pattern = re.compile(r"(\w+)_LIVE_STEPS, \1_STEPS = cfg\.pick\(small=\(([\d_]+), ([\d_]+)\)")
    steps = {MODELS[name]: int(long.replace("_", "")) for name, _, long in pattern.findall(notebook_code())}
    return steps | {name: int(small_profile_constant(constant)) for constant, name in LONG_ONLY.items()}


def small_profile_constant(name: str) -> float:
    """The small-profile value of `NAME = cfg.pick(small=VALUE, ...)` in the notebook."""
    value, = re.findall(rf"^{name} = cfg\.pick\(small=([\d_.e-]+),", notebook_code(), re.MULTILINE)
    return float(value.replace("_", ""))


def test_the_notebook_names_every_long_run():
    assert set(small_profile_long_steps()) == set(MODELS.values()) | set(LONG_ONLY.values())


def test_the_script_trains_with_the_notebooks_small_profile():
    settings = gans.SMALL_PROFILE
    assert small_profile_long_steps() == settings["steps"]
    for constant, key in (("IMAGE_SIZE", "image_size"), ("N_FID", "fid_count"),
                          ("N_FID_REFERENCE", "fid_reference_count"), ("EVAL_EVERY", "eval_every"),
                          ("VANILLA_LR", "vanilla_lr"), ("CRITIC_STEPS", "critic_steps")):
        assert small_profile_constant(constant) == settings[key], constant
    assert "helpers.setup(seed=0)" in notebook_code() and settings["seed"] == 0


@pytest.mark.parametrize("name", [*MODELS.values(), *LONG_ONLY.values()])
def test_checkpoint_is_small_loadable_and_current(name):
    path = CHECKPOINT_DIR / f"{name}.pt"
    assert path.is_file(), f"{path} is missing: run `make checkpoints`"
    assert path.stat().st_size < 5 * 2**20
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["command"] == gans.COMMAND == "python scripts/train_gans.py"
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["state_dict"].values())
    record = checkpoint["record"]
    assert record["steps"] == gans.SMALL_PROFILE["steps"][name], "stale checkpoint: run `make checkpoints`"
    every = gans.SMALL_PROFILE["eval_every"]
    assert record["fid_steps"] == list(range(every, record["steps"] + 1, every))
    assert len(record["fids"]) == len(record["fid_steps"]) and record["best_step"] in record["fid_steps"]
    runs = gans.long_runs(gans.SMALL_PROFILE["steps"], vanilla_lr=1e-3, critic_steps=5)
    generator, _ = gans.load_long_run(path, runs[name], gans.SMALL_PROFILE["image_size"])  # strict: same model
    assert gans.gan_samples(generator, 4, gans.balanced_labels(4)).shape == (4, 1, 16, 16)


def test_the_script_trains_and_saves_a_short_run(tmp_path):
    command = [sys.executable, str(SCRIPT), "--only", "vanilla", "--steps", "100", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "vanilla.pt" in result.stdout and "best training FID" in result.stdout
    checkpoint = torch.load(tmp_path / "vanilla.pt", weights_only=True)
    assert checkpoint["record"]["steps"] == 100 and checkpoint["record"]["fid_steps"] == [100]
    assert checkpoint["command"] == "python scripts/train_gans.py" and not (tmp_path / "dcgan.pt").exists()
