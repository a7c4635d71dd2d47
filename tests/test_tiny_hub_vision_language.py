"""The tiny hub's vision-language family: built into a temporary cache, loaded offline by the real Auto classes."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT
from helpers import models

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from tiny_hub import vision_language  # noqa: E402


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, one_torch_thread):
    cache = tmp_path_factory.mktemp("hub")
    vision_language.build({"HF_HUB_CACHE": str(cache)})
    return cache


def load(loader, model, cache, **options):
    """``loader.from_pretrained`` by repo id and revision, from ``cache`` only, as the notebooks call it offline."""
    return loader.from_pretrained(model.repo_id, revision=model.revision, cache_dir=cache, local_files_only=True,
                                  **options)


def photo(width=96, height=64):
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.mark.parametrize("model, processor_class, model_class", [
    (models.SMOLVLM, "Idefics3Processor", "Idefics3ForConditionalGeneration"),
    (models.IDEFICS2, "Idefics2Processor", "Idefics2ForConditionalGeneration"),
])
def test_vlm_answers_through_the_chat_template(hub_cache, model, processor_class, model_class):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = load(AutoProcessor, model, hub_cache)
    vlm = load(AutoModelForImageTextToText, model, hub_cache, dtype=torch.float32)
    assert (type(processor).__name__, type(vlm).__name__) == (processor_class, model_class)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert "<image>" in prompt and prompt.endswith("<end_of_utterance>\nAssistant:")
    for image in (photo(), photo(320, 220), Image.new("RGB", (32, 32), "white")):  # what ask_vlm sends
        inputs = processor(text=prompt, images=[image], return_tensors="pt")
        assert (inputs["input_ids"] == processor.image_token_id).sum() > 0
        output = vlm.generate(**inputs, max_new_tokens=5, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        assert 1 <= new_tokens.shape[1] <= 5
        assert isinstance(processor.batch_decode(new_tokens, skip_special_tokens=True)[0], str)


def test_smolvlm_splits_images_into_tiles_as_smolvlm_does(hub_cache):
    from transformers import AutoProcessor

    processor = load(AutoProcessor, models.SMOLVLM, hub_cache)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}], add_generation_prompt=True)
    inputs = processor(text=prompt, images=[photo(64, 64)], return_tensors="pt")
    assert inputs["pixel_values"].shape[1] == 5  # 2x2 tiles + the whole image
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert "<row_2_col_2>" in text and "<global-img>" in text


def test_clip_zero_shot_and_eos_token(hub_cache):
    from transformers import CLIPModel, CLIPProcessor

    clip = load(CLIPModel, models.CLIP_VIT_B32, hub_cache).eval()
    processor = load(CLIPProcessor, models.CLIP_VIT_B32, hub_cache)
    assert clip.config.text_config.eos_token_id == processor.tokenizer.eos_token_id
    labels = ["a photo of a cat.", "a photo of an unseen xylophone!"]
    inputs = processor(text=labels, images=[photo(), photo(40, 90)], return_tensors="pt", padding=True)
    unseen = processor.tokenizer(labels[1]).input_ids
    assert processor.tokenizer.unk_token_id not in unseen[1:-1], "the byte alphabet leaves nothing unknown"
    with torch.no_grad():
        outputs = clip(**inputs)
    probabilities = outputs.logits_per_image.softmax(dim=1)
    assert probabilities.shape == (2, 2) and torch.allclose(probabilities.sum(1), torch.ones(2))
    assert outputs.image_embeds.shape == outputs.text_embeds.shape == (2, clip.config.projection_dim)
