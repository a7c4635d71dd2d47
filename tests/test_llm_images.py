"""The local endpoint's images API (``POST /v1/images/generations``) through the official openai SDK."""

import base64
import io

import numpy as np
import openai
import pytest
from PIL import Image

from helpers.models import LOCAL_IMAGE_MODEL
from helpers.scenes import adherence, to_tensor


def decoded(response) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(image.b64_json))) for image in response.data]


def test_a_scene_prompt_is_drawn_as_asked(gpt):
    prompt = "A green triangle at the bottom left."
    response = gpt.images.generate(model=LOCAL_IMAGE_MODEL, prompt=prompt, n=6, size="32x32")
    images = decoded(response)
    assert len(images) == 6 and all(image.size == (32, 32) for image in images)
    assert response.size == "32x32" and response.output_format == "png" and response.usage.input_tokens > 0
    pixels = to_tensor(np.stack([np.asarray(image.convert("RGB")) for image in images]))
    assert adherence(pixels, ["a green triangle at the bottom left"] * 6) >= 0.5  # the trained model: about 0.9


def test_each_request_draws_new_images(gpt):
    first, second = (decoded(gpt.images.generate(model=LOCAL_IMAGE_MODEL, prompt="a red circle in the centre"))
                     for _ in range(2))
    assert first[0].tobytes() != second[0].tobytes()


@pytest.mark.parametrize("options, message", [
    ({"prompt": "a cat asleep on a sofa"}, "Cannot draw 'a cat asleep on a sofa': it does not know 'asleep'"),
    ({"prompt": "a red circle"}, "it has no a place"),
    ({"prompt": "a red circle at the top left", "size": "1024x1024"}, "draws 32x32 only"),
    ({"prompt": "a red circle at the top left", "model": "dall-e-3"}, "'dall-e-3' is retired"),
    ({"prompt": "a red circle at the top left", "quality": "hd"}, "quality: the local server does not support"),
    ({"prompt": "a red circle at the top left", "n": 11}, "n: Input should be less than or equal to 10"),
    ({"prompt": "a red circle at the top left", "response_format": "url"}, "response_format"),
])
def test_bad_requests_say_what_to_do(gpt, options, message):
    with pytest.raises(openai.BadRequestError, match=message.replace("(", r"\(")):
        gpt.images.generate(**{"model": LOCAL_IMAGE_MODEL, **options})


def test_the_error_lists_what_it_can_draw(gpt):
    with pytest.raises(openai.BadRequestError) as caught:
        gpt.images.generate(model=LOCAL_IMAGE_MODEL, prompt="a photo of a lighthouse at dusk")
    assert "red, green, blue circle, square, triangle" in str(caught.value)


def test_another_model_id_is_not_found(gpt):
    with pytest.raises(openai.NotFoundError, match="course-scenes-32px"):
        gpt.images.generate(model="gpt-image-2.5-flare", prompt="a red circle at the top left")
