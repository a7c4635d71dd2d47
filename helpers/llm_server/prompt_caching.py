"""Prompt caching's accounting, as both real APIs bill it: which input tokens were written to or read from a cache.

**Anthropic** caches only where a request asks, with ``cache_control: {"type": "ephemeral"}`` on a
block (at most 4 of them): the prompt up to the end of that block is a *breakpoint*. A breakpoint
at least :data:`ANTHROPIC_MIN_TOKENS` long is written on first use (``cache_creation_input_tokens``)
and read by the next requests that start the same way (``cache_read_input_tokens``) for its time
to live (5 minutes, or ``"ttl": "1h"``; each read renews it). ``input_tokens`` then counts only
the tokens after the last cache hit or write, so ``input_tokens + cache_creation_input_tokens +
cache_read_input_tokens`` is the whole prompt, what ``count_tokens`` says.

**OpenAI** caches by itself: a prompt of at least :data:`OPENAI_MIN_TOKENS` tokens that starts like a
recent one reports the shared start, in steps of :data:`OPENAI_STEP` tokens, as
``prompt_tokens_details.cached_tokens`` (still counted in ``prompt_tokens``).

What the local server computes is another matter: its prompt-prefix cache
(``helpers.llm_server.batching``) reuses every shared start it still holds, asked for or not.
This module only keeps the books the way the real APIs do, so that the usage fields a student
reads locally mean what they mean with a key.
"""

from __future__ import annotations

import threading
import time

from helpers.llm_server.batching import common_length

ANTHROPIC_MIN_TOKENS = 1024  # the shortest cacheable prompt of Claude Sonnet and Opus (Haiku's is longer)
ANTHROPIC_MAX_BREAKPOINTS = 4
TTL_SECONDS = {"5m": 300, "1h": 3600}
OPENAI_MIN_TOKENS = 1024
OPENAI_STEP = 128


class CacheBook:
    """The prompt starts each API has cached, with when they expire."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.anthropic: dict[tuple[int, ...], float] = {}  # breakpoint prefix -> expiry
        self.openai: dict[tuple[int, ...], float] = {}  # recent prompt -> expiry

    def anthropic_usage(self, prompt_ids: list[int], breakpoints: list[tuple[int, str]]) -> dict:
        """``{"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}`` of one request.

        ``breakpoints`` holds (token position, ttl) of each ``cache_control`` block. Breakpoints
        shorter than the minimum are not cached (as in the API: silently). The usage also splits
        the written tokens by time to live (``cache_creation``), as the API's does.
        """
        now = self.clock()
        cacheable = sorted((position, ttl) for position, ttl in breakpoints if position >= ANTHROPIC_MIN_TOKENS)
        read, written = 0, {"5m": 0, "1h": 0}  # written: per ttl, the tokens between the last hit and each breakpoint
        with self.lock:
            for key in [key for key, expiry in self.anthropic.items() if expiry <= now]:
                del self.anthropic[key]
            end = 0  # where the tokens counted so far end
            for position, ttl in cacheable:
                key = tuple(prompt_ids[:position])
                if key in self.anthropic:
                    read, written, end = position, {"5m": 0, "1h": 0}, position
                else:
                    written[ttl] += position - end
                    end = position
                self.anthropic[key] = now + TTL_SECONDS[ttl]
        creation = sum(written.values())
        return {"input_tokens": len(prompt_ids) - read - creation, "cache_creation_input_tokens": creation,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": written["5m"],
                                   "ephemeral_1h_input_tokens": written["1h"]}}

    def openai_cached_tokens(self, prompt_ids: list[int]) -> int:
        """Tokens of ``prompt_ids`` served from OpenAI's automatic cache (a multiple of 128, or 0)."""
        if len(prompt_ids) < OPENAI_MIN_TOKENS:
            return 0
        now = self.clock()
        with self.lock:
            for key in [key for key, expiry in self.openai.items() if expiry <= now]:
                del self.openai[key]
            shared = max((common_length(prompt_ids, key) for key in self.openai), default=0)
            self.openai[tuple(prompt_ids)] = now + TTL_SECONDS["5m"]
        cached = shared // OPENAI_STEP * OPENAI_STEP
        return cached if cached >= OPENAI_MIN_TOKENS else 0

