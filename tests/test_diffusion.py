"""helpers.diffusion on tiny runs: deterministic training, a prefix of longer runs, guidance, checkpoints round-trip."""

import math
import sys

import pytest
import torch

from conftest import REPO_ROOT
from helpers import diffusion

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as in the notebook and the script


def tiny_run(steps, conditional=False, schedule_steps=None):
    torch.manual_seed(0)
    images = torch.rand(32, 1, 16, 16) * 2 - 1
    labels = torch.arange(32) % 10 if conditional else None
    unet, scheduler = diffusion.make_unet(conditional), diffusion.make_scheduler()
    ema, losses = diffusion.train(unet, scheduler, images, labels, steps=steps, batch_size=4, progress=False,
                                  schedule_steps=schedule_steps)
    return ema, scheduler, losses


def test_training_is_deterministic_and_a_prefix_of_longer_runs():
    ema_a, _, losses_a = tiny_run(3)
    ema_b, _, losses_b = tiny_run(3)
    _, _, losses_c = tiny_run(2, schedule_steps=3)
    assert losses_a == losses_b and losses_a[:2] == losses_c
    for a, b in zip(ema_a.state_dict().values(), ema_b.state_dict().values()):
        assert torch.equal(a, b)


def test_learning_rate_warms_up_then_decays_to_zero():
    factor = diffusion.learning_rate_factor
    assert factor(0, 1000) == 1 / diffusion.WARMUP_STEPS and factor(diffusion.WARMUP_STEPS - 1, 1000) == 1
    assert factor(diffusion.WARMUP_STEPS, 1000) == 1 and math.isclose(factor(600, 1000), 0.5)
    assert factor(1000, 1000) == 0 and factor(600, 1000) > factor(800, 1000) > 0


def test_samplers_share_the_training_schedule():
    scheduler = diffusion.make_scheduler()
    for kind, steps in [("ddpm", diffusion.NUM_TRAIN_TIMESTEPS), ("ddim", 20), ("dpm-solver", 10)]:
        sampler = diffusion.make_sampler(scheduler, kind, steps)
        assert len(sampler.timesteps) == steps and torch.equal(sampler.betas, scheduler.betas), kind
    assert diffusion.make_sampler(scheduler, "ddim", 20).timesteps[0] == diffusion.NUM_TRAIN_TIMESTEPS - 1
    assert diffusion.make_sampler(scheduler, "dpm-solver", 5).config.thresholding


def test_guidance_branches_and_negative_labels():
    torch.manual_seed(0)
    unet = diffusion.make_unet(conditional=True).eval()
    sampler = diffusion.make_sampler(diffusion.make_scheduler(), "ddim", 2)
    labels, negative = torch.tensor([3, 7]), torch.tensor([1, 1])
    null = torch.full((2,), diffusion.NULL_LABEL)

    def draw(class_labels, scale, negative_labels=None):
        return diffusion.sample(unet, sampler, 2, seed=0, class_labels=class_labels, guidance_scale=scale,
                                negative_labels=negative_labels)

    assert torch.equal(draw(labels, 0), draw(null, 1))  # w = 0: the null label's branch alone
    assert torch.equal(draw(labels, 0, negative), draw(negative, 1))  # ... or the negative label's
    guided, against_negative = draw(labels, 3.0), draw(labels, 3.0, negative)
    assert guided.shape == (2, 1, 16, 16) and guided.abs().max() <= 1
    assert not torch.equal(guided, against_negative) and not torch.equal(guided, draw(labels, 1))
    assert torch.equal(guided, draw(labels, 3.0))  # same seed, same images


def test_checkpoint_round_trip_keeps_fp16_weights(tmp_path):
    ema, scheduler, _ = tiny_run(2, conditional=True)
    path = tmp_path / "tiny.pt"
    diffusion.save_checkpoint(path, ema, scheduler, {"metric": 1.0}, {"steps": 2})
    unet, loaded_scheduler, checkpoint = diffusion.load_checkpoint(path)
    assert checkpoint["metrics"] == {"metric": 1.0} and checkpoint["command"] == diffusion.TRAINING_COMMAND
    assert path.stat().st_size < 5 * 2**20 and not unet.training
    assert loaded_scheduler.config.num_train_timesteps == diffusion.NUM_TRAIN_TIMESTEPS
    for name, value in ema.state_dict().items():
        assert torch.equal(unet.state_dict()[name], value.half().float()), name


@pytest.mark.parametrize("conditional", [False, True])
def test_train_checkpoint_measures_the_saved_fp16_weights(tmp_path, monkeypatch, conditional):
    fp16_weights, evaluated_steps = [], []

    def stand_in(unet, scheduler, *args, **kwargs):  # the real metrics sample hundreds of digits
        fp16_weights.append(all(torch.equal(p, p.half().float()) for p in unet.parameters()))
        return 0.5

    monkeypatch.setattr(diffusion, "guided_class_accuracy" if conditional else "unconditional_fid", stand_in)
    path = tmp_path / "model.pt"
    result = diffusion.train_checkpoint(path, conditional, steps=2, eval_every=1, progress=False,
                                        on_eval=lambda step, metric, ema: evaluated_steps.append((step, metric)))
    checkpoint = torch.load(path, weights_only=True)
    name = "cfg_accuracy_scale_2_ddim_20" if conditional else "fid_ddim_20_360_vs_train"
    assert evaluated_steps == [(1, 0.5), (2, 0.5)]
    assert fp16_weights == [False, False, True]  # the fp32 EMA while training, then the reloaded fp16 weights
    assert checkpoint["metrics"] == result["metrics"] == {name: 0.5}
    assert checkpoint["training"]["steps"] == 2 and checkpoint["unet_config"]["num_class_embeds"] == (
        diffusion.NUM_CLASSES + 1 if conditional else None)
    assert checkpoint["training"]["label_dropout"] == (diffusion.LABEL_DROPOUT if conditional else 0.0)


def test_measure_seed_fids_adds_the_fids_and_keeps_the_weights(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    import train_diffusion  # scripts/ is not a package

    ema, scheduler, _ = tiny_run(1)
    path = tmp_path / "ddpm.pt"
    diffusion.save_checkpoint(path, ema, scheduler, {"fid_ddim_20_360_vs_train": 1.0}, {"steps": 1})
    before = torch.load(path, weights_only=True)["state_dict"]
    drawn = []  # (sampler class, steps, count, seed): the real runs draw 4 x 360 digits

    def stand_in(unet, sampler, count, seed=0, **kwargs):
        drawn.append((type(sampler).__name__, len(sampler.timesteps), count, seed))
        return torch.zeros(count, 1, 16, 16)

    monkeypatch.setattr(diffusion, "sample", stand_in)
    monkeypatch.setattr(train_diffusion, "fid", lambda fake, real: 2.0 + len(drawn))
    record = train_diffusion.measure_seed_fids(path)
    checkpoint = torch.load(path, weights_only=True)
    assert drawn == [("DDPMScheduler", 250, 360, 0)] + [("DDIMScheduler", 20, 360, seed) for seed in (0, 1, 2)]
    assert checkpoint["metrics"] == {"fid_ddim_20_360_vs_train": 1.0, "fid_ddpm_250_360_vs_train": 3.0}
    assert checkpoint["seed_fids"] == record and record["ddim_20_fid_by_seed"] == {0: 4.0, 1: 5.0, 2: 6.0}
    assert all(torch.equal(checkpoint["state_dict"][name], value) for name, value in before.items())


def test_trajectory_records_each_step_without_changing_the_samples():
    torch.manual_seed(0)
    unet = diffusion.make_unet().eval()
    sampler = diffusion.make_sampler(diffusion.make_scheduler(), "ddim", 3)
    trajectory = []
    images = diffusion.sample(unet, sampler, 2, seed=0, trajectory=trajectory)
    assert torch.equal(images, diffusion.sample(unet, sampler, 2, seed=0))
    assert [t for t, _, _ in trajectory] == sampler.timesteps.tolist()
    start = torch.randn((2, 1, 16, 16), generator=torch.Generator().manual_seed(0))
    assert torch.equal(trajectory[0][1], start)  # the first x_t is the starting noise
    assert all(x_t.shape == x0.shape == (2, 1, 16, 16) for _, x_t, x0 in trajectory)
    assert trajectory[-1][2].abs().max() <= 1  # DDIM clips its estimate of x_0
