"""The local model behind the endpoint: SmolLM2-135M-Instruct, its sampler, and text pieces out.

:class:`LocalModel` holds the model and its tokenizer and streams an answer piece by
piece, with ``max_tokens`` and stop sequences; its tokens come from the batcher
(``helpers.llm_server.batching``), which writes those of all running requests at once.
:func:`pick_token` is the sampler (greedy at temperature 0, else top-k / top-p) and
:func:`penalize` OpenAI's frequency and presence penalties. Tool calls are decoded on the
same model by ``helpers.llm_tools``.
"""

from __future__ import annotations

import threading
from contextlib import closing
from dataclasses import dataclass, field
from typing import Iterator

import torch

from helpers.config import fast_cpu_dtype
from helpers.llm_server.batching import Batcher, PrefixCache
from helpers.llm_server.prompt_caching import CacheBook
from helpers.llm_server.structured import JsonGrammars
from helpers.local_model import load_smollm2

# Used when a request leaves them out: as both real APIs, temperature 1 (sampled).
# SmolLM2 rambles at 1 and even at 0.2 names Paris as France's capital only 3 times
# in 4, so the notebooks pass temperature 0 to the local model, where they want a
# reproducible answer (helpers.llm.greedy_if_local).
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0


# SmolLM2's tool-use tags: in a text answer the model has left its turn when it writes one, so the
# answer ends there (end_turn / stop) and the tag never reaches the client.
CONTROL_TAGS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]


@dataclass
class Sampling:
    max_tokens: int
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    frequency_penalty: float = 0.0  # OpenAI: minus this for each time a token already appeared
    presence_penalty: float = 0.0  # OpenAI: minus this once for any token that already appeared
    json_schema: str | None = None  # structured output: the JSON schema (as JSON text) the answer follows


@dataclass
class Generation:
    """What one generation produced; filled in while it streams."""

    input_tokens: int = 0
    output_tokens: int = 0
    finish: str = "length"  # "stop" (end of turn), "length" (max_tokens) or "stop_sequence"
    stop_sequence: str | None = None


def pick_token(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    """Greedy at temperature 0; otherwise sample from the top-k / top-p (nucleus) distribution."""
    if sampling.temperature == 0:
        return int(logits.argmax())
    logits = logits.float() / sampling.temperature
    if sampling.top_k:
        kth_best = torch.topk(logits, min(sampling.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if sampling.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside_nucleus = sorted_probs.cumsum(0) - sorted_probs >= sampling.top_p
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs.masked_fill(outside_nucleus, 0))
    return int(torch.multinomial(probs, 1, generator=generator))


def penalize(logits: torch.Tensor, counts: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """OpenAI's frequency and presence penalties, applied to the logits before choosing a token.

    ``logits[j] - counts[j] * frequency_penalty - (counts[j] > 0) * presence_penalty``, where
    ``counts[j]`` is how often token ``j`` was generated so far in this answer (the prompt does
    not count). Positive values discourage repetition, negative ones encourage it.
    """
    if not (sampling.frequency_penalty or sampling.presence_penalty):
        return logits
    counts = counts.to(torch.float32)
    return logits.float() - counts * sampling.frequency_penalty - (counts > 0) * sampling.presence_penalty


def held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters to hold back: they may be the start of a stop sequence."""
    longest = 1 if text.endswith("\ufffd") else 0  # half of a multi-byte character
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class LocalModel:
    """SmolLM2-135M-Instruct behind a lock: chat prompt in, text pieces out."""

    def __init__(self, dtype: torch.dtype | None = None):
        """``dtype``: ``helpers.config.fast_cpu_dtype()`` unless given (bfloat16 where the CPU is fast at it). In
        bfloat16 a row's rounding depends on the rows beside it, as on the real APIs' servers, so at temperature 0
        a near-tie can go the other way in a batch than alone; in fp32 it practically never does."""
        self.model, self.tokenizer = load_smollm2(dtype or fast_cpu_dtype())
        self.context = self.model.config.max_position_embeddings
        end_of_text = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.end_ids = {self.tokenizer.eos_token_id, end_of_text}
        self.lock = threading.Lock()  # one forward pass at a time: the batcher's steps or a tool call's cursor
        self.json_grammars = JsonGrammars(self.tokenizer, self.model.config.vocab_size)
        self.prefix_cache = PrefixCache()
        self.batcher = Batcher(self.model, self.end_ids, self.lock, self.prefix_cache)
        self.cache_book = CacheBook()  # the APIs' prompt-caching accounting (usage fields)
        self.text_lock = threading.Lock()  # the fast tokenizer is not safe across threads
        self.closing = threading.Event()
        self.rng = torch.Generator().manual_seed(0)  # reproducible from a fresh start, varied across calls

    def close(self) -> None:
        """Stop every generation and the batcher's thread."""
        self.closing.set()
        self.batcher.close()

    def encode(self, messages: list[dict], prefill: str = "") -> list[int]:
        """Token ids of a chat (``[{"role", "content"}]``) ready for the assistant's turn."""
        with self.text_lock:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text + prefill, add_special_tokens=False).input_ids

    def start_of(self, messages: list[dict], index: int, content: str) -> list[int]:
        """Token ids of the chat up to the end of ``content``, the start of ``messages[index]``'s content."""
        marker = "\ue000"  # a private-use character: where the chat template has put the end of ``content``
        partial = [*messages[:index], {**messages[index], "content": content + marker}]
        with self.text_lock:
            text = self.tokenizer.apply_chat_template(partial, tokenize=False)
            return self.tokenizer(text[: text.index(marker)], add_special_tokens=False).input_ids

    def tokens_of(self, text: str) -> list[int]:
        with self.text_lock:
            return self.tokenizer(text, add_special_tokens=False).input_ids

    def text_of(self, ids: list[int]) -> str:
        with self.text_lock:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

    def stream(
        self,
        prompt_ids: list[int],
        sampling: Sampling,
        result: Generation,
        cancelled: threading.Event,
        reply: str | None = None,
        generator: torch.Generator | None = None,
        control_tags: list[str] = CONTROL_TAGS,
    ) -> Iterator[str]:
        """Yield the answer's text piece by piece and fill in ``result``.

        The model writes the answer, or, when ``reply`` is given (image requests),
        that fixed text is played back with the same limits and stop sequences.
        Sampling draws from ``generator``, or from the server's own seeded one.
        The answer ends at a stop sequence or at one of ``control_tags`` (pass none
        to read a tool call).
        """
        result.input_tokens = len(prompt_ids)
        budget = min(sampling.max_tokens, self.context - len(prompt_ids))
        if reply is None:
            generator = generator or self.rng
            constraint = self.json_grammars.constraint(sampling.json_schema) if sampling.json_schema else None

            def pick(logits: torch.Tensor, counts: torch.Tensor) -> int:
                if constraint is not None:  # only tokens that keep the answer valid JSON of the schema
                    logits = constraint.allowed(logits)
                token = pick_token(penalize(logits, counts, sampling), sampling, generator)
                if constraint is not None:
                    constraint.accept(token)
                return token

            tokens = self.batcher.generate(prompt_ids, max(budget, 0), pick)
        else:
            tokens = (token for token in [*self.tokens_of(reply), self.tokenizer.eos_token_id])
        new_ids: list[int] = []
        text, sent = "", 0
        with closing(tokens):  # takes the request out of the batch as soon as we stop
            for token in tokens if budget > 0 else ():
                if cancelled.is_set() or self.closing.is_set():
                    return
                if token in self.end_ids:
                    result.finish = "stop"
                    break
                new_ids.append(token)
                text = self.text_of(new_ids)
                hits = [(text.find(stop), stop) for stop in sampling.stop + control_tags if stop in text]
                if hits:
                    cut, stop = min(hits)
                    text = text[:cut]
                    if stop in sampling.stop:
                        result.finish, result.stop_sequence = "stop_sequence", stop
                    else:
                        result.finish = "stop"
                    break
                ready = len(text) - held_back(text, sampling.stop + control_tags)
                if ready > sent:
                    yield text[sent:ready]
                    sent = ready
                if len(new_ids) == budget:
                    result.finish = "length"
                    break
        result.output_tokens = len(new_ids)
        if len(text) > sent:
            yield text[sent:]
