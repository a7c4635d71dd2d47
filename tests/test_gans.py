"""helpers.gans, chapter 01's models and training loops, on tiny sizes (each test a few seconds at most)."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.image.fid import FrechetInceptionDistance

from helpers import gans
from helpers.data import digits
from helpers.evaluation import DigitsFeatures, shipped_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_setup():
    """192 real digits, batches of 16, a training FID of 64 images against 128, every 5 steps."""
    images, labels = digits(16, "train")
    return gans.TrainingSetup(images[:192], labels[:192], reference=images[:128], judge=shipped_classifier(),
                              fid_count=64, eval_every=5, batch_size=16)


def tiny_runs(steps: int = 20) -> dict:
    return gans.long_runs({name: steps for name in gans.SMALL_PROFILE["steps"]}, vanilla_lr=1e-3, critic_steps=2)


@pytest.mark.parametrize("image_size", [16, 28])
def test_every_model_draws_and_scores_images_of_its_size(image_size):
    torch.manual_seed(0)
    noise, labels = torch.randn(4, gans.LATENT_DIM), torch.tensor([0, 3, 7, 9])
    for run in tiny_runs().values():
        generator = run.make_generator(image_size).eval()
        images = generator(noise, labels)
        assert images.shape == (4, 1, image_size, image_size) and images.abs().max() <= 1
        assert run.make_discriminator(image_size)(images, labels).shape == (4, 1)
    translated = gans.Translator()(images)
    assert translated.shape == images.shape and gans.PatchDiscriminator()(translated).dim() == 4


def test_gan_samples_are_seeded_on_the_cpu_and_restore_the_mode():
    torch.manual_seed(0)
    generator = gans.DCGANGenerator(16).train()
    first, again = gans.gan_samples(generator, 6, seed=3), gans.gan_samples(generator, 6, seed=3)
    assert torch.equal(first, again) and first.device.type == "cpu" and first.shape == (6, 1, 16, 16)
    assert not torch.equal(first, gans.gan_samples(generator, 6, seed=4))
    assert generator.training  # eval mode only while sampling (batch norm uses its running statistics)


def test_real_batches_visit_every_image_once_per_pass():
    images, labels = torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10)
    batches = gans.real_batches(images, labels, batch_size=3, seed=0)
    first_pass = [next(batches) for _ in range(3)]  # 3 full batches; the tenth image is dropped this pass
    seen = torch.cat([batch_labels for _, batch_labels in first_pass])
    assert len(set(seen.tolist())) == 9
    assert all(torch.equal(batch_images.flatten(), batch_labels.float()) for batch_images, batch_labels in first_pass)


def test_gradient_penalty_of_a_linear_critic_is_exact():
    direction = torch.randn(1, 1, 16, 16)
    critic = lambda images, labels=None: (images * direction).flatten(1).sum(1, keepdim=True)  # noqa: E731
    real, fake = torch.rand(8, 1, 16, 16), torch.rand(8, 1, 16, 16)
    penalty = gans.gradient_penalty(critic, real, fake)
    assert torch.allclose(penalty, (direction.norm() - 1) ** 2)
    network_penalty = gans.gradient_penalty(gans.wgan_critic(16), real, fake)
    assert network_penalty.requires_grad  # create_graph=True: the critic is trained through it


def test_the_two_generator_losses_are_the_minimax_and_non_saturating_ones():
    logits = torch.linspace(-5, 5, 11)[:, None]
    discriminator = lambda images, labels=None: images  # noqa: E731  (the "images" are the logits)
    saturating = gans.saturating_generator_loss(discriminator, logits, None)
    non_saturating = gans.non_saturating_generator_loss(discriminator, logits, None)
    assert torch.allclose(saturating, torch.log(1 - torch.sigmoid(logits)).mean(), atol=1e-6)
    assert torch.allclose(non_saturating, -torch.log(torch.sigmoid(logits)).mean(), atol=1e-6)


def test_best_checkpoint_keeps_the_weights_of_the_lowest_fid():
    scores = iter([3.0, 1.0, 2.0])
    keeper = gans.BestCheckpoint(lambda images: next(scores), count=4)
    generator = gans.VanillaGenerator(16)
    for step in (10, 20, 30):
        with torch.no_grad():
            generator.net[0].bias.fill_(step)
        keeper.update(step, generator)
    assert keeper.steps == [10, 20, 30] and keeper.best_step == 20 and keeper.best_fid == 1.0
    best = keeper.best_generator(generator)
    assert torch.all(best.net[0].bias == 20) and torch.all(generator.net[0].bias == 30) and not best.training


def test_training_fid_is_the_chapters_own_torchmetrics_computation(tiny_setup):
    """The training FID goes through helpers.evaluation.fid (its reference cache): same numbers as a metric
    built by hand that embeds the reference set once (what chapter 01 did before)."""
    metric = FrechetInceptionDistance(feature=DigitsFeatures(tiny_setup.judge), reset_real_features=False)
    metric.update(tiny_setup.reference, real=True)
    for images in (tiny_setup.images[128:192], torch.rand(64, 1, 16, 16) * 2 - 1):
        metric.reset()
        metric.update(images, real=False)
        assert tiny_setup.training_fid(images) == float(metric.compute())


@pytest.mark.parametrize("name", ["cgan", "wgan_gp"])  # EMA + learning-rate decay; several critic steps + penalty
def test_a_live_run_is_the_beginning_of_its_long_run(tiny_setup, name):
    run = tiny_runs(steps=20)[name]
    live_history, _ = gans.train_run(run, tiny_setup, steps=10, seed=0)
    again_history, _ = gans.train_run(run, tiny_setup, steps=10, seed=0)
    long_generator, record = gans.train_long_run(run, tiny_setup, seed=0)
    live = live_history["checkpoints"]
    assert live.fids == again_history["checkpoints"].fids  # deterministic
    assert record["fid_steps"] == [5, 10, 15, 20] and record["fids"][:2] == live.fids
    assert record["d_loss_every_50"] == [] and record["best_step"] in record["fid_steps"]
    assert record["fids"][2:] != live.fids  # the long run went on (and decayed its learning rates)


def test_a_long_run_saves_and_loads_bit_identically(tiny_setup, tmp_path):
    run = tiny_runs(steps=50)["dcgan"]
    generator, record = gans.train_long_run(run, tiny_setup, seed=0)
    gans.save_long_run(tmp_path / "dcgan.pt", generator, record)
    loaded, loaded_record = gans.load_long_run(tmp_path / "dcgan.pt", run, image_size=16)
    assert loaded_record == record and len(record["d_loss_every_50"]) == 1
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in generator.state_dict().items())
    assert torch.equal(gans.gan_samples(loaded, 4), gans.gan_samples(generator, 4))
    assert torch.load(tmp_path / "dcgan.pt", weights_only=True)["command"] == gans.COMMAND
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        gans.load_long_run(tmp_path / "missing.pt", run, image_size=16)


def test_long_runs_decay_over_the_second_half_of_the_long_run():
    runs = gans.long_runs(gans.SMALL_PROFILE["steps"], vanilla_lr=1e-3, critic_steps=5)
    assert list(runs) == list(gans.SMALL_PROFILE["steps"])
    assert runs["cgan"].recipe["decay_after"] == 3_000 and runs["wgan_gp"].recipe["decay_after"] == 2_000
    assert runs["wgan_gp"].describe().startswith("wgan_gp: train_gan(DCGANGenerator, wgan_critic, 4,000 steps, "
                                                 "d_loss_fn=wgan_gp_critic_loss")


def test_extra_generator_steps_update_the_generator_more_often_than_the_discriminator(tiny_setup):
    def updates(generator_steps):
        torch.manual_seed(0)
        generator, discriminator = gans.DCGANGenerator(16), gans.DCGANDiscriminator(16)
        generator_passes = []
        generator.project[0].weight.register_hook(lambda gradient: generator_passes.append(1))
        history, _ = gans.train_gan(generator, discriminator, 3, tiny_setup, generator_steps=generator_steps)
        return len(generator_passes), len(history["g_loss"])

    assert updates(1) == (3, 3)  # one generator backward pass per step
    assert updates(4) == (12, 3)  # four per step, one loss recorded per step


def test_latent_mapper_starts_as_its_generator_and_trains_only_itself(tiny_setup):
    torch.manual_seed(0)
    generator = gans.DCGANGenerator(16)
    generator.project[1].running_mean.normal_()  # batch-norm statistics that training mode would overwrite
    mapper = gans.LatentMapper(generator).train()
    noise = torch.randn(8, generator.latent_dim)
    on_sphere = noise * (generator.latent_dim ** 0.5 / noise.norm(dim=1, keepdim=True))
    assert torch.allclose(mapper(noise), generator(on_sphere))  # the identity, in eval mode
    frozen = copy.deepcopy(generator.state_dict())
    gans.train_gan(mapper, gans.DCGANDiscriminator(16), 3, tiny_setup, generator_steps=2)
    assert all(torch.equal(frozen[name], value) for name, value in generator.state_dict().items())
    assert mapper.net[-1].weight.abs().sum() > 0  # the mapper itself learned


def test_mean_pairwise_distance_is_zero_for_copies_and_its_interval_brackets_real_digits():
    images, _ = digits(16, "test")
    copies = images[:1].repeat(50, 1, 1, 1)
    assert gans.mean_pairwise_distance(copies) == 0.0
    two = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert gans.mean_pairwise_distance(two) == pytest.approx(2.0)  # sqrt(4 pixels x 1²)
    value = gans.mean_pairwise_distance(images[:200])
    low, high = gans.mean_pairwise_distance_interval(images[:200], resamples=200)
    assert low < value < high and high - low < 0.2 * value
    assert gans.mean_pairwise_distance_interval(images[:200], resamples=200, seed=1) != (low, high)


def test_cyclegan_trains_two_translators_on_unpaired_halves():
    images, _ = digits(16, "train")
    to_thick, to_thin, history = gans.train_cyclegan(images[:64], steps=3, batch_size=8)
    assert len(history["cycle"]) == len(history["adversarial"]) == 3
    assert not to_thick.training and to_thin(to_thick(images[:4])).shape == (4, 1, 16, 16)
    assert torch.equal(gans.thicken(images[:4]), F.max_pool2d(images[:4], 3, stride=1, padding=1))
    assert (gans.thicken(images[:4]) >= images[:4]).all()  # strokes only grow


def test_the_original_wgan_clips_every_critic_weight_and_uses_rmsprop(tiny_setup):
    run = tiny_runs(steps=3)["wgan_clip"]
    assert run.recipe["optimizer"] == "rmsprop" and run.recipe["clip_weights"] == 0.01
    assert run.recipe["d_loss_fn"] is gans.wgan_critic_loss and "gradient_penalty" not in run.describe()
    torch.manual_seed(0)
    generator, critic = run.make_generator(16), run.make_discriminator(16)
    assert max(parameter.abs().max().item() for parameter in critic.parameters()) > 0.01  # before: not clipped
    gans.train_gan(generator, critic, 3, tiny_setup, **run.recipe)
    assert max(parameter.abs().max().item() for parameter in critic.parameters()) <= 0.01
    real, fake = torch.ones(4, 1, 16, 16), -torch.ones(4, 1, 16, 16)
    assert gans.wgan_critic_loss(critic, real, fake, None) == critic(fake).mean() - critic(real).mean()
