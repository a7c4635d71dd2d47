"""helpers.text_to_image on tiny runs (shapes, determinism, checkpoints, the pipeline class), its script, and the
shipped checkpoints' recorded metrics."""

import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO_ROOT
from helpers import text_to_image as t2i
from helpers.scenes import HELD_OUT_COMBOS, TRAIN_COMBOS, caption, caption_tokenizer, make_scenes


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(64, TRAIN_COMBOS, seed=0)


def tiny_text_to_image(scenes, steps=3):
    images, captions, _ = scenes
    torch.manual_seed(0)
    vae = t2i.make_vae()
    vae_losses = t2i.train_vae(vae, images, steps=steps, batch_size=8, progress=False)
    means, stds = t2i.encode_latents(vae.eval(), images)
    tokenizer = caption_tokenizer()
    unet, text_encoder, scheduler = t2i.make_unet(), t2i.make_text_encoder(tokenizer), t2i.make_scheduler()
    losses = t2i.train_denoiser(unet, text_encoder, tokenizer, scheduler, means, stds, captions, 1.0,
                                steps=steps, batch_size=8, progress=False)
    return vae, unet, text_encoder, tokenizer, scheduler, vae_losses, losses


def test_shapes_and_sizes(scenes):
    vae, unet, text_encoder, tokenizer, *_ = tiny_text_to_image(scenes, steps=1)
    images = scenes[0][:2]
    latents, reconstructions = t2i.reconstruct(vae, images)
    assert latents.shape == (2, 4, 8, 8) and reconstructions.shape == images.shape
    states = t2i.encode_text(text_encoder, tokenizer, ["a red circle at the top left", ""])
    assert states.shape == (2, 10, unet.config.cross_attention_dim)
    for module in (vae, unet, text_encoder):  # fp16 checkpoints must stay under 5 MB
        assert sum(p.numel() for p in module.parameters()) * 2 < 5 * 2**20


def test_training_is_deterministic(scenes):
    *_, vae_first, first = tiny_text_to_image(scenes)
    *_, vae_second, second = tiny_text_to_image(scenes)
    assert vae_first == vae_second and first == second


def test_data_splits():
    images, captions, found = t2i.training_scenes()
    assert len(images) == t2i.TRAIN_SCENES and set(map(tuple, found)) == set(TRAIN_COMBOS)
    test_images, test_captions, test_found = t2i.held_out_scenes()
    assert len(test_images) == t2i.TEST_SCENES and set(map(tuple, test_found)) == set(HELD_OUT_COMBOS)
    prompts = t2i.held_out_prompts(2)
    assert prompts[:2] == [caption(HELD_OUT_COMBOS[0])] * 2 and len(prompts) == 2 * len(HELD_OUT_COMBOS)


def test_checkpoints_round_trip_and_pipeline_matches_sampler(scenes, tmp_path):
    from diffusers import StableDiffusionPipeline

    vae, unet, text_encoder, tokenizer, scheduler, _, losses = tiny_text_to_image(scenes)
    t2i.save_vae(tmp_path / "vae.pt", vae, {}, {})
    t2i.save_text_to_image(tmp_path / "t2i.pt", unet, text_encoder, scheduler, 0.5, {}, {"steps": 3})
    vae, _ = t2i.load_vae(tmp_path / "vae.pt")
    unet, text_encoder, tokenizer, scheduler, scale, checkpoint = t2i.load_text_to_image(tmp_path / "t2i.pt")
    assert scale == 0.5 and checkpoint["training"]["steps"] == 3
    models = t2i.SceneModels(vae, unet, text_encoder, tokenizer, scheduler, scale)
    prompts = [caption(HELD_OUT_COMBOS[0]), caption(HELD_OUT_COMBOS[1])]
    vae.register_to_config(scaling_factor=scale)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=t2i.ddim(scheduler, 3), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
    pipeline.set_progress_bar_config(disable=True)
    for guidance_scale in (t2i.GUIDANCE_SCALE, 1.0):  # with guidance (two passes) and without (one)
        sampled = t2i.images_from_prompts(prompts, models, guidance_scale, steps=3, seed=0)
        assert sampled.shape == (2, 3, 32, 32) and sampled.min() >= -1 and sampled.max() <= 1
        piped = pipeline(prompts, num_inference_steps=3, guidance_scale=guidance_scale,
                         generator=torch.Generator().manual_seed(0), output_type="pt").images
        assert torch.allclose(piped, (sampled + 1) / 2, atol=1e-3), guidance_scale


def test_sampler_never_starts_from_pure_noise_level():
    sampler = t2i.ddim(t2i.make_scheduler(), 20)
    assert sampler.timesteps[0] < 999 and sampler.alphas_cumprod[sampler.timesteps[0]] > 1e-3


def test_captioner_trains_and_round_trips(scenes, tmp_path):
    images, captions, _ = scenes
    tokenizer = caption_tokenizer()
    torch.manual_seed(0)
    captioner = t2i.Captioner(len(tokenizer))
    losses = t2i.train_captioner(captioner, tokenizer, images, captions, steps=30, batch_size=16, progress=False)
    assert sum(losses[-5:]) < sum(losses[:5])
    predicted = captioner.caption(images[:4], tokenizer)
    assert len(predicted) == 4 and all(isinstance(text, str) and "<" not in text for text in predicted)
    t2i.save_captioner(tmp_path / "captioner.pt", captioner, {}, {"steps": 30})
    loaded, _ = t2i.load_captioner(tmp_path / "captioner.pt")
    for name, value in captioner.state_dict().items():  # the fp16 round trip: the weights, rounded to fp16
        assert torch.equal(loaded.state_dict()[name], value.half().float()), name
    assert len(loaded.caption(images[:4], tokenizer)) == 4
    assert 0 <= t2i.caption_accuracy(loaded, tokenizer, images[:8], captions[:8]) <= 1


def test_text_to_image_checkpoint_stores_what_its_fp16_weights_measure(scenes, tmp_path):
    images, captions, _ = scenes
    torch.manual_seed(0)
    vae = t2i.make_vae().eval()
    logged = []
    metrics, training = t2i.make_text_to_image_checkpoint(tmp_path, vae, images, captions, steps=2, eval_every=1,
                                                          per_prompt=2, progress=False, log=logged.append)
    assert list(training["adherence_curve"]) == [1, 2] and len(logged) == 2 and training["steps"] == 2
    unet, text_encoder, tokenizer, scheduler, scale, checkpoint = t2i.load_text_to_image(tmp_path / t2i.T2I_FILE)
    assert checkpoint["metrics"] == metrics and checkpoint["training"] == training
    assert checkpoint["unet"]["conv_in.weight"].dtype == torch.float16
    models = t2i.SceneModels(vae, unet, text_encoder, tokenizer, scheduler, scale)
    assert metrics["adherence_held_out_w1"] == t2i.measure_adherence(models, 1.0, per_prompt=2)
    assert "(w = 3, 9 images)" in logged[0]


def test_script_trains_one_stage_into_a_folder(tmp_path):
    command = [sys.executable, "scripts/train_text_to_image.py", "--quick", "--only", "captioner",
               "--out-dir", str(tmp_path), "--no-progress"]
    output = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    assert [path.name for path in tmp_path.iterdir()] == [t2i.CAPTIONER_FILE]
    assert "captioner: {'caption_accuracy_held_out_combos'" in output and "10 steps" in output
    captioner, checkpoint = t2i.load_captioner(tmp_path / t2i.CAPTIONER_FILE)
    test_images, test_captions, _ = t2i.held_out_scenes()
    assert checkpoint["command"] == t2i.COMMAND and checkpoint["training"]["steps"] == 10
    assert checkpoint["metrics"]["caption_accuracy_held_out_combos"] == t2i.caption_accuracy(
        captioner, caption_tokenizer(), test_images, test_captions)


def test_shipped_checkpoints_hold_the_metrics_they_and_data_readme_record():
    """The metrics in data/ are measured from the shipped weights (re-measured here) and match data/README.md."""
    test_images, test_captions, _ = t2i.held_out_scenes()
    vae, vae_checkpoint = t2i.load_vae()
    _, reconstructions = t2i.reconstruct(vae, test_images)
    vae_mse = vae_checkpoint["metrics"]["vae_recon_mse_held_out"]
    assert F.mse_loss(reconstructions, test_images).item() == pytest.approx(vae_mse, rel=1e-3)
    captioner, captioner_checkpoint = t2i.load_captioner()
    caption_accuracy = captioner_checkpoint["metrics"]["caption_accuracy_held_out_combos"]
    assert t2i.caption_accuracy(captioner, caption_tokenizer(), test_images, test_captions) == pytest.approx(
        caption_accuracy, abs=1.5 / len(test_captions))
    *parts, t2i_checkpoint = t2i.load_text_to_image()
    models = t2i.SceneModels(vae, *parts)
    adherence = t2i_checkpoint["metrics"]
    for w in (t2i.GUIDANCE_SCALE, 1.0):
        assert t2i.measure_adherence(models, w) == pytest.approx(
            adherence[f"adherence_held_out_w{w:g}"], abs=1.5 / (9 * t2i.EVAL_PER_PROMPT))
    row = next(line for line in (REPO_ROOT / "data" / "README.md").read_text().splitlines() if "scenes_vae.pt" in line)
    recorded = re.search(r"MSE ([\d.]+); prompt adherence ([\d.]+) with guidance w = 3, ([\d.]+) at w = 1; "
                         r"exact-caption accuracy ([\d.]+)", row)
    assert recorded, "data/README.md's chapter 03 row no longer names its metrics"
    assert [float(value) for value in recorded.groups()] == [
        round(vae_mse, 4), round(adherence["adherence_held_out_w3"], 2), round(adherence["adherence_held_out_w1"], 2),
        round(caption_accuracy, 2)]

