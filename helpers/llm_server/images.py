"""OpenAI's images API, ``POST /v1/images/generations``, served by chapter 03's scene model.

The course's own small text-to-image model (``helpers.text_to_image``: a VAE, a CLIP text encoder and a
UNet that ``scripts/train_text_to_image.py`` trained) draws 32×32 scenes of one red, green or blue circle,
square or triangle in one of five places. A prompt in its words ("a red circle at the top left") gets
``n`` PNGs as ``b64_json``, in the shape of ``openai.types.ImagesResponse``; a prompt it cannot draw gets a
400 that says what it can draw. The models load on the first request.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import re
import threading
import time
from typing import Literal

import torch
from openai.types import ImagesResponse
from PIL import Image
from pydantic import Field, field_validator

from helpers import text_to_image as t2i
from helpers.llm_server.generation import typed
from helpers.llm_server.openai_routes import openai_error
from helpers.llm_server.schemas import RequestError, Strict, parse
from helpers.models import LOCAL_IMAGE_MODEL, OPENAI_IMAGE_MODEL, RETIRED_IMAGE_MODELS
from helpers.scenes import COLOURS, POSITIONS, SHAPES, WORDS, caption, parse_caption, to_uint8

SIZE = f"{t2i.IMAGE_SIZE}x{t2i.IMAGE_SIZE}"
CAN_DRAW = (f"The local image model ({LOCAL_IMAGE_MODEL}, chapter 03's scene model) draws one "
            f"{', '.join(COLOURS)} {', '.join(SHAPES)} at the {', '.join(POSITIONS[:-1])} or in the centre, "
            "as 'a red circle at the top left'.")
_models = None
_lock = threading.Lock()  # one drawing at a time; the models load once
_seeds = itertools.count()  # each request draws new images, reproducibly from a fresh server


class ImageRequest(Strict):
    prompt: str = Field(min_length=1)
    model: str = LOCAL_IMAGE_MODEL
    n: int = Field(1, ge=1, le=10)
    size: str = "auto"
    response_format: Literal["b64_json"] | None = None  # the GPT image models return base64 only, too
    output_format: Literal["png"] | None = None
    user: str | None = None
    safety_identifier: str | None = None

    @field_validator("model")
    @classmethod
    def not_retired(cls, model: str) -> str:
        if model in RETIRED_IMAGE_MODELS:
            raise ValueError(f"{model!r} is retired (dall-e-2 and dall-e-3 in May 2026, gpt-image-1 in October 2026): "
                             f"use a current GPT image model, such as helpers.models.OPENAI_IMAGE_MODEL "
                             f"({OPENAI_IMAGE_MODEL!r}), or {LOCAL_IMAGE_MODEL!r} offline")
        return model


def scene_prompt(prompt: str) -> str:
    """The scene caption a prompt asks for, or a RequestError saying what the model can draw."""
    words = re.findall(r"[a-z]+", prompt.lower())
    unknown = sorted({word for word in words if word not in WORDS and word != "center"})
    scene = parse_caption(prompt)
    if unknown or None in scene:
        missing = [name for name, value in zip(("a colour", "a shape", "a place"), scene) if value is None]
        reason = f"it does not know {', '.join(map(repr, unknown))}" if unknown else f"it has no {', '.join(missing)}"
        raise RequestError(f"Cannot draw {prompt!r}: {reason}. {CAN_DRAW}", param="prompt")
    return caption(scene)


def draw(prompt: str, count: int, side: int = t2i.IMAGE_SIZE) -> list[bytes]:
    """``count`` PNG images of the scene ``prompt`` describes (a caption of :func:`scene_prompt`), drawn at
    32×32 and scaled to ``side`` pixels (nearest neighbour) where the stand-in is asked for a larger size."""
    global _models
    with _lock:
        if _models is None:
            vae, _ = t2i.load_vae()
            unet, text_encoder, tokenizer, scheduler, latent_scale, _ = t2i.load_text_to_image()
            _models = t2i.SceneModels(vae, unet, text_encoder, tokenizer, scheduler, latent_scale)
        with torch.inference_mode():
            pixels = to_uint8(t2i.images_from_prompts([prompt] * count, _models, seed=next(_seeds)))
    pngs = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def images_response(pngs: list[bytes], prompt_tokens: int, size: str = SIZE) -> dict:
    """The API's answer for ``pngs``, checked against ``openai.types.ImagesResponse``."""
    return typed(ImagesResponse, {
        "created": int(time.time()), "output_format": "png", "size": size, "quality": "low",
        "data": [{"b64_json": base64.b64encode(png).decode()} for png in pngs],
        "usage": {"input_tokens": prompt_tokens, "output_tokens": 0, "total_tokens": prompt_tokens,
                  "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0}},
    })


async def images_generations(body: bytes, served: set[str] | None = None, any_size: bool = False):
    """The route: validate, check the prompt is drawable, draw in a worker thread.

    ``served``: the model ids answered (default: the local one); ``any_size``: square sizes beyond 32×32 are
    drawn at 32×32 and scaled up (the stand-in for the real API, ``helpers.api_stand_in``)."""
    try:
        request = parse(ImageRequest, body, served={LOCAL_IMAGE_MODEL} if served is None else served)
        side = t2i.IMAGE_SIZE
        if request.size not in ("auto", SIZE):
            width, _, height = request.size.partition("x")
            if not (any_size and width.isdigit() and width == height):
                raise RequestError(f"size: the local image model draws {SIZE} only (or 'auto').", param="size")
            side = int(width)
        prompt = scene_prompt(request.prompt)
    except RequestError as error:
        return openai_error(error)
    pngs = await asyncio.to_thread(draw, prompt, request.n, side)
    return images_response(pngs, prompt_tokens=len(prompt.split()), size=f"{side}x{side}")
