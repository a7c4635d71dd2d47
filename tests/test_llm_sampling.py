"""helpers.llm_server: OpenAI's frequency and presence penalties (and that they leave the rest alone)."""

import openai
import pytest
import torch

from helpers import llm
from helpers.llm_server import Sampling, penalize, pick_token

POEM = "Write a short poem about the sea."  # greedy SmolLM2 repeats "a canvas of endless blue" here


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def distinct_2(text: str) -> float:
    words = text.split()
    pairs = list(zip(words, words[1:]))
    return len(set(pairs)) / len(pairs)


def test_penalize_follows_openais_formula():
    logits = torch.tensor([1.0, 1.0, 1.0, 1.0])
    counts = torch.tensor([0, 1, 3, 0], dtype=torch.int32)
    sampling = Sampling(max_tokens=1, frequency_penalty=0.5, presence_penalty=0.25)
    assert torch.allclose(penalize(logits, counts, sampling), torch.tensor([1.0, 0.25, -0.75, 1.0]))
    negative = Sampling(max_tokens=1, frequency_penalty=-1.0)  # negative values reward repetition
    assert torch.allclose(penalize(logits, counts, negative), torch.tensor([1.0, 2.0, 4.0, 1.0]))
    assert penalize(logits, counts, Sampling(max_tokens=1)) is logits  # no penalty: untouched


def test_penalty_changes_the_greedy_choice():
    logits = torch.tensor([0.0, 2.0, 1.5])
    counts = torch.tensor([0, 2, 0], dtype=torch.int32)
    greedy = Sampling(max_tokens=1, temperature=0)
    generator = torch.Generator().manual_seed(0)
    assert pick_token(penalize(logits, counts, greedy), greedy, generator) == 1
    penalized = Sampling(max_tokens=1, temperature=0, frequency_penalty=0.5)
    assert pick_token(penalize(logits, counts, penalized), penalized, generator) == 2


def test_penalties_reduce_repetition_through_the_sdk(gpt):
    def poem(**penalties) -> str:
        reply = gpt.chat.completions.create(
            model=llm.LOCAL_MODEL, temperature=0, messages=[{"role": "user", "content": POEM}], max_tokens=32, **penalties
        )
        return reply.choices[0].message.content

    plain, repeated = poem(), poem(frequency_penalty=-1.0)
    frequency, presence = poem(frequency_penalty=1.0), poem(presence_penalty=1.0)
    assert distinct_2(repeated) < distinct_2(plain) < distinct_2(frequency)
    assert distinct_2(plain) < distinct_2(presence)


@pytest.mark.parametrize("name", ["frequency_penalty", "presence_penalty"])
def test_out_of_range_penalty_is_a_bad_request(gpt, name):
    with pytest.raises(openai.BadRequestError, match=name):
        gpt.chat.completions.create(
            model=llm.LOCAL_MODEL, temperature=0, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, **{name: 2.5}
        )
