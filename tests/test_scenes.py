"""helpers.scenes: drawing, captions, the held-out split, the tokenizer, and reading scenes back exactly."""

import numpy as np
import pytest
import torch

from helpers.scenes import (
    ALL_COMBOS, COLOURS, HELD_OUT_COMBOS, POSITIONS, SHAPES, TRAIN_COMBOS, WORDS, Scene, adherence, caption,
    caption_tokenizer, draw_scene, is_valid_scene, make_scenes, parse_caption, read_scene, to_tensor, to_uint8,
)


def test_captions_round_trip():
    for combo in ALL_COMBOS:
        assert parse_caption(caption(combo)) == Scene(*combo)
    assert caption(("red", "circle", "top left")) == "a red circle at the top left"
    assert caption(("blue", "square", "centre")) == "a blue square in the centre"
    assert parse_caption("a purple blob") == Scene(None, None, None)


def test_held_out_split_keeps_every_pair_in_training():
    assert len(ALL_COMBOS) == 45 and len(HELD_OUT_COMBOS) == 9 and len(TRAIN_COMBOS) == 36
    assert not set(HELD_OUT_COMBOS) & set(TRAIN_COMBOS)
    for first, second in ((0, 1), (0, 2), (1, 2)):
        seen = {(combo[first], combo[second]) for combo in TRAIN_COMBOS}
        every = {(combo[first], combo[second]) for combo in ALL_COMBOS}
        assert seen == every, f"a pair of fields {first, second} is never seen in training"


def test_read_scene_is_exact_on_every_combination_without_jitter():
    for combo in ALL_COMBOS:
        assert read_scene(draw_scene(combo)) == Scene(*combo), combo


def test_read_scene_is_exact_on_drawn_scenes():
    images, captions, scenes = make_scenes(900, seed=3)
    assert images.shape == (900, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert [caption(scene) for scene in scenes] == captions
    assert all(read_scene(image) == scene for image, scene in zip(images, scenes))
    assert adherence(images, captions) == 1.0
    assert adherence(images[:45], scenes[:45]) == 1.0


def test_read_scene_other_inputs_and_sizes():
    image = draw_scene(("green", "triangle", "bottom right"), size=64, rng=np.random.default_rng(0))
    expected = Scene("green", "triangle", "bottom right")
    from PIL import Image

    assert read_scene(image) == expected
    assert read_scene(Image.fromarray(image)) == expected
    assert read_scene(to_tensor(image)[0]) == expected
    assert read_scene(np.full((32, 32, 3), 255, np.uint8)) == Scene(None, None, None)


def test_read_scene_tolerates_noise():
    images, _, scenes = make_scenes(90, seed=4)
    noisy = (images + 0.15 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert np.mean([read_scene(image) == scene for image, scene in zip(noisy, scenes)]) >= 0.95


def test_scenes_are_reproducible_and_balanced():
    first, captions, scenes = make_scenes(90, TRAIN_COMBOS, seed=7)
    second, _, _ = make_scenes(90, TRAIN_COMBOS, seed=7)
    assert torch.equal(first, second)
    assert set(map(tuple, scenes)) == set(TRAIN_COMBOS)
    assert not set(map(tuple, scenes)) & set(HELD_OUT_COMBOS)


def test_uint8_round_trip():
    images, _, _ = make_scenes(5, seed=1)
    assert torch.equal(to_tensor(to_uint8(images)), images)


def test_tokenizer():
    tokenizer = caption_tokenizer()
    assert len(tokenizer) == 4 + 4 + len(COLOURS) + len(SHAPES) + 5
    assert f"captions' {len(WORDS)} words" in caption_tokenizer.__doc__  # the docstring counts them right
    batch = tokenizer(["a red circle at the top left", ""], padding="max_length", max_length=10)
    ids = batch["input_ids"]
    assert len(ids[0]) == len(ids[1]) == 10
    assert ids[0][0] == tokenizer.bos_token_id and ids[0][8] == tokenizer.eos_token_id
    assert ids[1][:3] == [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    assert tokenizer.decode(ids[0], skip_special_tokens=True) == "a red circle at the top left"
    assert tokenizer("a purple circle")["input_ids"][2] == tokenizer.unk_token_id


@pytest.mark.parametrize("scene, message", [(("pink", "circle", "centre"), "unknown scene"),
                                            (("red", "star", "centre"), "unknown scene")])
def test_bad_scenes_raise(scene, message):
    with pytest.raises(ValueError, match=message):
        draw_scene(scene)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="size"):
        draw_scene(("red", "circle", "centre"), size=8)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        read_scene(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="prompts"):
        adherence(torch.zeros(2, 3, 32, 32), ["a red circle in the centre"])
    assert POSITIONS[-1] == "centre"


def test_is_valid_scene_passes_drawn_scenes_and_fails_smears_blanks_and_extra_shapes():
    from PIL import Image

    images, _, _ = make_scenes(45, seed=3)  # one jittered drawing of each of the 45 scenes
    assert all(is_valid_scene(image) for image in images)
    drawn = draw_scene(("red", "circle", "top left"))
    assert is_valid_scene(Image.fromarray(drawn)) and is_valid_scene(drawn)  # PIL and uint8 arrays too
    blank = np.full((32, 32, 3), 255, dtype=np.uint8)
    assert not is_valid_scene(to_tensor(blank)[0])
    two_shapes = np.minimum(drawn, draw_scene(("blue", "square", "bottom right")))  # a second shape beside it
    assert not is_valid_scene(two_shapes)
    too_big = draw_scene(("red", "circle", "top left"), size=64)[:32, :32]  # a 22-pixel circle on a 32-pixel canvas
    assert not is_valid_scene(too_big)
    speckled = drawn.copy()
    speckled[::4, ::4] = (40, 170, 60)  # green specks over the canvas: 6 % of it coloured outside the shape
    assert not is_valid_scene(speckled) and is_valid_scene(speckled, max_stray=0.1)
