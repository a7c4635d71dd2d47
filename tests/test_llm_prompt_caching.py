"""Prompt caching's usage fields on the local server, as the real APIs report them (helpers.llm_server.prompt_caching)."""

import anthropic
import pytest
from conftest import GREEDY

from helpers import llm
from helpers.llm_server.prompt_caching import ANTHROPIC_MIN_TOKENS, OPENAI_STEP, CacheBook

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# About 1,300 tokens of shop policy: long enough to be cached (1,024 at least)
POLICY = " ".join(f"Rule {n}: orders of category {n} ship within {n % 5 + 2} working days and can be returned "
                  f"within {14 + n} days with the receipt." for n in range(1, 61))
QUESTION = [{"role": "user", "content": "How long do I have to return an order of category 3?"}]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# ----------------------------------------------------------------------------- the accounting (no model)


def test_anthropic_breakpoint_written_then_read_until_it_expires():
    clock = Clock()
    book, prompt = CacheBook(clock), list(range(2000))
    first = book.anthropic_usage(prompt, [(1500, "5m")])
    assert (first["cache_creation_input_tokens"], first["cache_read_input_tokens"], first["input_tokens"]) == \
        (1500, 0, 500)
    assert first["cache_creation"] == {"ephemeral_5m_input_tokens": 1500, "ephemeral_1h_input_tokens": 0}
    clock.now = 299  # a read renews the five minutes
    assert book.anthropic_usage(prompt, [(1500, "5m")])["cache_read_input_tokens"] == 1500
    clock.now = 299 + 301
    assert book.anthropic_usage(prompt, [(1500, "5m")])["cache_creation_input_tokens"] == 1500  # expired: written again


def test_anthropic_short_breakpoints_are_not_cached_and_two_breakpoints_split_the_write():
    book = CacheBook(Clock())
    short = book.anthropic_usage(list(range(900)), [(ANTHROPIC_MIN_TOKENS - 200, "5m")])
    assert short["cache_creation_input_tokens"] == short["cache_read_input_tokens"] == 0 and short["input_tokens"] == 900
    prompt = list(range(3000))
    book.anthropic_usage(prompt, [(1200, "1h")])
    both = book.anthropic_usage(prompt, [(1200, "1h"), (2500, "5m")])
    assert (both["cache_read_input_tokens"], both["cache_creation_input_tokens"], both["input_tokens"]) == \
        (1200, 1300, 500)


def test_openai_caches_shared_starts_of_long_prompts_in_steps():
    book = CacheBook(Clock())
    assert book.openai_cached_tokens(list(range(1500))) == 0  # nothing seen yet
    again = book.openai_cached_tokens(list(range(1400)) + [-1] * 300)
    assert again == 1400 // OPENAI_STEP * OPENAI_STEP == 1280
    assert book.openai_cached_tokens(list(range(1000))) == 0  # under 1,024 tokens: never cached


# ----------------------------------------------------------------------------- through the official SDKs


def test_anthropic_cache_control_writes_then_reads_and_adds_up_to_count_tokens(claude):
    system = [{"type": "text", "text": POLICY, "cache_control": {"type": "ephemeral"}}]
    counted = claude.messages.count_tokens(model=llm.LOCAL_MODEL, system=system, messages=QUESTION).input_tokens
    first = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, system=system, messages=QUESTION,
                                   extra_body=GREEDY).usage
    second = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, system=system, messages=QUESTION,
                                    extra_body=GREEDY).usage
    assert first.cache_creation_input_tokens >= ANTHROPIC_MIN_TOKENS and first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens and \
        second.cache_creation_input_tokens == 0
    assert first.input_tokens + first.cache_creation_input_tokens == counted  # the question is not cached
    assert second.input_tokens == first.input_tokens < 40
    without = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, system=POLICY, messages=QUESTION,
                                     extra_body=GREEDY).usage
    assert without.input_tokens == counted and not without.cache_read_input_tokens  # no cache_control: no caching


@pytest.mark.parametrize("cache_control, words", [({"type": "persistent"}, "ephemeral"),
                                                  ({"type": "ephemeral", "ttl": "2h"}, "ttl")])
def test_anthropic_bad_cache_control_is_refused(claude, cache_control, words):
    system = [{"type": "text", "text": "Be brief.", "cache_control": cache_control}]
    with pytest.raises(anthropic.BadRequestError, match=words):
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, system=system, messages=QUESTION)


def test_anthropic_at_most_four_breakpoints(claude):
    system = [{"type": "text", "text": f"Rule {n}.", "cache_control": {"type": "ephemeral"}} for n in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, system=system, messages=QUESTION)


def test_openai_reports_cached_tokens_of_a_repeated_long_prompt(gpt):
    messages = [{"role": "system", "content": POLICY}, *QUESTION]
    first = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=5, messages=messages, temperature=0).usage
    second = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=5, messages=messages, temperature=0).usage
    assert first.prompt_tokens_details.cached_tokens in (0, second.prompt_tokens_details.cached_tokens)
    cached = second.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % OPENAI_STEP == 0 and cached <= second.prompt_tokens == first.prompt_tokens
    answer = gpt.responses.create(model=llm.LOCAL_MODEL, max_output_tokens=16, input=messages, temperature=0)
    assert answer.usage.input_tokens_details.cached_tokens == cached  # the Responses API shares the cache
