"""Procedurally drawn scenes with captions, and an exact reader of scenes from pixels.

A scene is one shape (circle, square or triangle) in one colour (red, green or blue) at one
of five positions (top left, top right, bottom left, bottom right, centre) on a white canvas,
with a little random jitter in size and place. Its caption says exactly what is drawn:

    >>> caption(Scene("red", "circle", "top left"))
    'a red circle at the top left'

``read_scene(image)`` reads colour, shape and position back from the pixels (nearest palette
colour, largest connected blob, fill ratio of its bounding box, nearest anchor), so that
text-to-image models can be scored exactly and image-to-text models have ground truth.
Nine of the 45 (colour, shape, position) combinations are held out of training
(``HELD_OUT_COMBOS``): every colour, shape and position -- and every pair of them -- is still
seen in training, but never those nine triples, so they test composition.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import torch

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220)}
BACKGROUND = (255, 255, 255)
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("top left", "top right", "bottom left", "bottom right", "centre")
# Anchor of each position as fractions (x, y) of the canvas.
ANCHORS = {"top left": (0.25, 0.25), "top right": (0.75, 0.25), "bottom left": (0.25, 0.75),
           "bottom right": (0.75, 0.75), "centre": (0.5, 0.5)}
SHAPE_SIZE = 0.34  # side of a shape's bounding box, as a fraction of the canvas (+-1 px jitter)
JITTER = 1  # pixels the centre may move each way
MIN_PIXELS = 0.01  # below this share of the canvas, no shape is read

ALL_COMBOS = list(itertools.product(COLOURS, SHAPES, POSITIONS))
# (colour i, shape j) is held out at position (i + 3 j) mod 5: one position for each of the 9
# (colour, shape) pairs, and no (colour, position) or (shape, position) pair loses all its triples.
HELD_OUT_COMBOS = [(colour, shape, POSITIONS[(i + 3 * j) % 5])
                   for i, colour in enumerate(COLOURS) for j, shape in enumerate(SHAPES)]
TRAIN_COMBOS = [combo for combo in ALL_COMBOS if combo not in HELD_OUT_COMBOS]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
WORDS = ("a", "at", "in", "the", *COLOURS, *SHAPES, "top", "bottom", "left", "right", "centre")
MAX_TOKENS = 10  # <bos> + the longest caption (7 words) + <eos>, padded


class Scene(NamedTuple):
    colour: str | None
    shape: str | None
    position: str | None


def caption(scene: Scene | tuple) -> str:
    """The caption of a scene: 'a red circle at the top left', 'a blue square in the centre'."""
    colour, shape, position = scene
    where = "in the centre" if position == "centre" else f"at the {position}"
    return f"a {colour} {shape} {where}"


def parse_caption(text: str) -> Scene:
    """Inverse of :func:`caption`; fields it cannot find are ``None``."""
    words = text.lower().replace(".", " ").split()
    colour = next((word for word in words if word in COLOURS), None)
    shape = next((word for word in words if word in SHAPES), None)
    position = None
    if "centre" in words or "center" in words:
        position = "centre"
    vertical = next((word for word in words if word in ("top", "bottom")), None)
    horizontal = next((word for word in words if word in ("left", "right")), None)
    if vertical and horizontal:
        position = f"{vertical} {horizontal}"
    return Scene(colour, shape, position)


def draw_scene(scene: Scene | tuple, size: int = 32, rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw a scene as an RGB uint8 array ``(size, size, 3)``; ``rng`` adds size and place jitter."""
    from PIL import Image, ImageDraw

    colour, shape, position = scene
    if colour not in COLOURS or shape not in SHAPES or position not in POSITIONS:
        raise ValueError(f"unknown scene {tuple(scene)}: colours {list(COLOURS)}, shapes {list(SHAPES)}, "
                         f"positions {list(POSITIONS)}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, not {size}")
    side = round(SHAPE_SIZE * size)
    dx = dy = 0
    if rng is not None:
        side += int(rng.integers(-1, 2))
        dx, dy = (int(value) for value in rng.integers(-JITTER, JITTER + 1, size=2))
    ax, ay = ANCHORS[position]
    x0 = round(ax * size - side / 2) + dx
    y0 = round(ay * size - side / 2) + dy
    x1, y1 = x0 + side - 1, y0 + side - 1
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    fill = COLOURS[colour]
    if shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    elif shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    else:  # an upright triangle
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) / 2, y0)], fill=fill)
    return np.asarray(image)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``(N, H, W, 3)`` (or one ``(H, W, 3)``) -> float ``(N, 3, H, W)`` in [-1, 1]."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    return torch.tensor(array).permute(0, 3, 1, 2).float().div(127.5).sub(1).contiguous()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float ``(N, 3, H, W)`` (or ``(3, H, W)``) in [-1, 1] -> RGB uint8 ``(N, H, W, 3)``."""
    if images.ndim == 3:
        images = images[None]
    array = images.detach().float().cpu().numpy().transpose(0, 2, 3, 1)
    return np.rint((np.clip(array, -1, 1) + 1) * 127.5).astype(np.uint8)


def make_scenes(count: int, combos: list | None = None, size: int = 32, seed: int = 0):
    """``count`` jittered scenes drawn from ``combos`` (default: all 45), cycling through them.

    Returns ``(images, captions, scenes)``: a float tensor ``(count, 3, size, size)`` in [-1, 1],
    the list of captions and the list of :class:`Scene`. The same seed gives the same scenes.
    """
    combos = list(combos if combos is not None else ALL_COMBOS)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(-(-count // len(combos)))])[:count]
    scenes = [Scene(*combos[index]) for index in order]
    images = np.stack([draw_scene(scene, size, rng) for scene in scenes])
    return to_tensor(images), [caption(scene) for scene in scenes], scenes


def _as_rgb(image) -> np.ndarray:
    """Any of: PIL image, uint8 ``(H, W, 3)`` array, float tensor ``(3, H, W)`` in [-1, 1] -> float HWC."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"a tensor image must be (3, H, W) in [-1, 1], not {tuple(image.shape)}")
        return to_uint8(image)[0].astype(np.float32)
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"an array image must be (H, W, 3) RGB, not {array.shape}")
    return array.astype(np.float32)


def _shape_blob(image) -> tuple[np.ndarray, int, np.ndarray | None]:
    """(each pixel's nearest palette colour, 0 = background; the most frequent shape colour; the mask of that
    colour's largest connected blob, or None when too few pixels are coloured)."""
    from scipy import ndimage

    rgb = _as_rgb(image)
    height, width, _ = rgb.shape
    palette = np.array([BACKGROUND, *COLOURS.values()], dtype=np.float32)
    nearest = ((rgb[:, :, None, :] - palette) ** 2).sum(-1).argmin(-1)
    counts = np.bincount(nearest.ravel(), minlength=len(palette))[1:]
    colour_index = int(counts.argmax()) + 1
    if counts.max() < MIN_PIXELS * height * width:
        return nearest, colour_index, None
    blobs, n_blobs = ndimage.label(nearest == colour_index)
    largest = 1 + int(np.bincount(blobs.ravel(), minlength=n_blobs + 1)[1:].argmax())
    return nearest, colour_index, blobs == largest


def read_scene(image) -> Scene:
    """Read (colour, shape, position) back from the pixels of one image.

    Each pixel takes its nearest palette colour (background included); the most frequent shape
    colour wins, and its largest connected blob is the shape. Position: the anchor nearest to
    the blob's bounding-box centre. Shape: how much of its bounding box the blob fills (square
    ~1, circle ~pi/4, triangle ~1/2). Fields that cannot be read (no shape) are ``None``.
    """
    nearest, colour_index, blob = _shape_blob(image)
    if blob is None:
        return Scene(None, None, None)
    height, width = nearest.shape
    ys, xs = np.nonzero(blob)
    box_width, box_height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    fill = len(xs) / (box_width * box_height)
    shape = "square" if fill >= 0.9 else "circle" if fill >= 0.65 else "triangle"
    centre = np.array([(xs.min() + xs.max() + 1) / 2 / width, (ys.min() + ys.max() + 1) / 2 / height])
    position = min(ANCHORS, key=lambda name: float(((np.array(ANCHORS[name]) - centre) ** 2).sum()))
    return Scene(list(COLOURS)[colour_index - 1], shape, position)


def is_valid_scene(image, max_stray: float = 0.01) -> bool:
    """True when ``image`` (as ``read_scene`` takes it) shows one shape as the scenes are drawn, any of the 45.

    ``read_scene`` always reads *something* once a few pixels are coloured, so this asks more: the
    shape it reads is a drawn shape's size (bounding box within 2.5 px of ``SHAPE_SIZE`` of the
    canvas each way) and at most ``max_stray`` of the canvas is coloured outside it (other blobs,
    other colours). Every drawn scene passes; a smear of colours, or two shapes, does not.
    """
    nearest, _, blob = _shape_blob(image)
    if blob is None:  # (almost) nothing drawn
        return False
    height, width = nearest.shape
    ys, xs = np.nonzero(blob)
    drawn_side = SHAPE_SIZE * width
    right_size = abs(xs.max() - xs.min() + 1 - drawn_side) <= 2.5 and abs(ys.max() - ys.min() + 1 - drawn_side) <= 2.5
    stray = ((nearest != 0) & ~blob).sum() / (height * width)
    return bool(right_size and stray <= max_stray)


def adherence(images, prompts) -> float:
    """Share of ``images`` whose read colour, shape and position all match their prompt (caption or Scene)."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    wanted = [parse_caption(p) if isinstance(p, str) else Scene(*p) for p in prompts]
    return float(np.mean([read_scene(image) == scene for image, scene in zip(images, wanted)]))


def caption_tokenizer(max_length: int = MAX_TOKENS):
    """A word-level Hugging Face tokenizer for the captions' 15 words (and 4 special tokens), built in memory.

    ``tokenizer(captions, padding="max_length", max_length=10, return_tensors="pt")`` gives
    ``<bos> words <eos> <pad>...``; unknown words map to ``<unk>``; the empty caption "" is
    ``<bos> <eos>`` (the *unconditional* prompt of classifier-free guidance).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate((*SPECIAL_TOKENS, *WORDS))}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=max_length)
