"""scripts/train_diffusion.py on tiny runs: deterministic, a prefix of longer runs, checkpoints round-trip."""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_diffusion.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_diffusion", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.set_num_threads(1)
    return module


def tiny_run(script, steps, conditional=False):
    torch.manual_seed(0)
    images = torch.rand(32, 1, 16, 16) * 2 - 1
    labels = torch.arange(32) % 10 if conditional else None
    unet, scheduler = script.make_unet(conditional), script.make_scheduler()
    ema, losses = script.train(unet, scheduler, images, labels, steps=steps, batch_size=4, progress=False)
    return ema, scheduler, losses


def test_training_is_deterministic_and_a_prefix_of_longer_runs(script):
    ema_a, _, losses_a = tiny_run(script, 3)
    ema_b, _, losses_b = tiny_run(script, 3)
    _, _, losses_c = tiny_run(script, 2)
    assert losses_a == losses_b and losses_a[:2] == losses_c
    for a, b in zip(ema_a.state_dict().values(), ema_b.state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_round_trip_and_guided_sampling(script, tmp_path):
    ema, scheduler, _ = tiny_run(script, 2, conditional=True)
    path = tmp_path / "tiny.pt"
    script.save_checkpoint(path, ema, scheduler, {"metric": 1.0}, {"steps": 2})
    unet, loaded_scheduler, checkpoint = script.load_checkpoint(path)
    assert checkpoint["metrics"] == {"metric": 1.0} and path.stat().st_size < 5 * 2**20
    assert loaded_scheduler.config.num_train_timesteps == script.NUM_TRAIN_TIMESTEPS
    labels = torch.tensor([3, 7])
    images = script.sample(unet, script.ddim(loaded_scheduler, 2), 2, torch.Generator().manual_seed(0),
                           class_labels=labels, guidance_scale=3.0)
    assert images.shape == (2, 1, 16, 16) and images.abs().max() <= 1
