"""Continuous batching and a prompt-prefix cache: how the endpoint serves many requests at once.

One thread, :class:`Batcher`, owns the model's forward passes. A request joins the
running batch as soon as its prompt is computed; each step then writes one more token
for every request in the batch in a single forward pass (one row each, left-padded to
the longest), with each request's own sampling, penalties and budget. A request leaves
the batch when it ends, runs out of budget or its client stops reading. Like a real
server's key/value memory, the batch has a capacity (``max_batch_mb``, rows x padded
length x the bytes of a position): a request that does not fit waits, in order, until rows leave.

:class:`PrefixCache` keeps the key/value states of recent prompts: a new prompt that
starts like one of them (the same system prompt, the same few-shot examples) computes
only the tokens after the shared part, like the prompt caching of the real APIs.
"""

from __future__ import annotations

import atexit
import queue
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Iterator

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [batch, heads, length, dim]


def layers_of(cache: DynamicCache) -> Layers:
    return [(layer.keys, layer.values) for layer in cache.layers]


class GrowingLayer(DynamicLayer):
    """A cache layer with spare room: a step writes its new position in place.

    transformers' ``DynamicLayer`` concatenates, copying the whole batch's cache at every
    step; on this machine that took 40 % of a 16-row step.
    """

    ROOM = 64  # positions added each time the room runs out

    def __init__(self, room_keys: torch.Tensor, room_values: torch.Tensor, length: int):
        """Buffers [rows, heads, positions, dim] whose first ``length`` positions are filled."""
        super().__init__()
        self.dtype, self.device, self.is_initialized = room_keys.dtype, room_keys.device, True
        self.length = length
        self.room = [room_keys, room_values]
        self.keys, self.values = room_keys[:, :, :length], room_values[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        end = self.length + key_states.shape[2]
        if end > self.room[0].shape[2]:
            self.room = [_with_room(self.keys, end), _with_room(self.values, end)]
        self.room[0][:, :, self.length : end] = key_states
        self.room[1][:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self.room[0][:, :, :end], self.room[1][:, :, :end]
        return self.keys, self.values


def _with_room(tensor: torch.Tensor, needed: int) -> torch.Tensor:
    """A copy of ``tensor`` [rows, heads, length, dim] in a buffer of ``needed`` + ROOM positions."""
    rows, heads, length, dim = tensor.shape
    buffer = tensor.new_empty(rows, heads, needed + GrowingLayer.ROOM, dim)
    buffer[:, :, :length] = tensor
    return buffer


def growing_cache(layers: Layers) -> DynamicCache:
    cache = DynamicCache()
    cache.layers = [GrowingLayer(_with_room(k, k.shape[2]), _with_room(v, v.shape[2]), k.shape[2]) for k, v in layers]
    return cache


def _stacked_with_room(tensors: list[torch.Tensor], width: int) -> torch.Tensor:
    """Row blocks [rows, heads, length, dim] stacked and left-padded to ``width`` positions, in a buffer with room."""
    first = tensors[0]
    rows = sum(tensor.shape[0] for tensor in tensors)
    buffer = first.new_zeros(rows, first.shape[1], width + GrowingLayer.ROOM, first.shape[3])
    row = 0
    for tensor in tensors:
        buffer[row : row + tensor.shape[0], :, width - tensor.shape[2] : width] = tensor
        row += tensor.shape[0]
    return buffer


def common_length(a: list[int], b: tuple[int, ...]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    size = min(len(a), len(b))
    if size == 0:
        return 0
    differs = torch.tensor(a[:size]) != torch.tensor(b[:size])
    return int(differs.int().argmax()) if differs.any() else size


class PrefixCache:
    """Key/value states of recent prompts, least recently used dropped first, up to ``max_tokens`` in all."""

    def __init__(self, max_tokens: int = 4096):
        self.max_tokens = max_tokens
        self.entries: OrderedDict[tuple[int, ...], Layers] = OrderedDict()
        self.hits = self.reused_tokens = 0  # for the benchmark and the tests

    def lookup(self, ids: list[int]) -> tuple[DynamicCache | None, int]:
        """A fresh cache of the longest stored prefix of ``ids`` (at most all but its last token) and its length."""
        best, length = None, 0
        for key in self.entries:
            shared = min(common_length(ids, key), len(ids) - 1)
            if shared > length:
                best, length = key, shared
        if best is None:
            return None, 0
        self.entries.move_to_end(best)
        self.hits += 1
        self.reused_tokens += length
        layers = [(k[:, :, :length].clone(), v[:, :, :length].clone()) for k, v in self.entries[best]]
        return DynamicCache(ddp_cache_data=layers), length

    def store(self, ids: list[int], cache: DynamicCache) -> None:
        """Keep a copy of the states of prompt ``ids`` (a batch of one)."""
        key = tuple(ids)
        if len(key) > self.max_tokens:
            return
        self.entries.pop(key, None)
        self.entries[key] = [(k.clone(), v.clone()) for k, v in layers_of(cache)]
        while sum(len(stored) for stored in self.entries) > self.max_tokens:
            self.entries.popitem(last=False)


@dataclass(eq=False)
class Request:
    """One generation in the batcher: its prompt, how to pick tokens, and where they go."""

    prompt_ids: list[int]
    budget: int  # tokens it may write
    pick: object  # (logits, counts) -> token id
    tokens: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # token ids, then None
    stopped: threading.Event = field(default_factory=threading.Event)  # the reader went away
    written: int = 0
    last: int = 0  # the token written last: the next step's input
    length: int = 0  # real (not padding) positions in the cache
    counts: torch.Tensor | None = None  # how often each token was written (for the penalties)


class Batcher:
    """The thread that runs every forward pass of the model; :meth:`generate` is its only door."""

    def __init__(self, model, end_ids: set[int], lock: threading.Lock, prefix_cache: PrefixCache,
                 max_batch_mb: float = 96):
        """``max_batch_mb``: the batch's keys and values may take this much memory (rows x padded length x the
        bytes of one position, ``max_batch_positions``); a longer single request still runs, alone.

        Measured on 72 concurrent chats of about 150 tokens (SmolLM2-135M, 2 cores, a 4096-token prefix cache):
        with no limit, fp32 took 72-76 s and the process peaked at 3.3-3.8 GB (the allocator keeps what the
        growing batch's copies freed); 3072 positions (141 MB) took 90 s at 2.24 GB, 1638 (72 MB) 134 s at 2.03 GB.
        In bfloat16, 3072 positions (71 MB) took 53 s at 1.72 GB, 4096 (94 MB) the same time at 1.77 GB.
        """
        self.model, self.end_ids, self.lock, self.prefix_cache = model, end_ids, lock, prefix_cache
        self.max_batch_positions = int(max_batch_mb * 2**20 // bytes_per_position(model))
        self.waiting: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.pending: deque[Request] = deque()  # taken from ``waiting``, waiting for room in the batch
        self.rows: list[Request] = []  # the running batch, one row each
        self.cache: DynamicCache | None = None  # the batch's keys and values, left-padded
        self.mask: torch.Tensor | None = None  # 1 where a row's position is real, 0 where padding
        self.largest_batch = 0  # for the benchmark and the tests
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="llm-batcher", daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def generate(self, prompt_ids: list[int], budget: int, pick) -> Iterator[int]:
        """New token ids for ``prompt_ids``, at most ``budget`` of them, ending at an end-of-turn token.

        ``pick(logits, counts)`` chooses each token. Closing the iterator early takes
        the request out of the batch.
        """
        request = Request(list(prompt_ids), budget, pick)
        self.waiting.put(request)
        try:
            while (token := request.tokens.get()) is not None:
                yield token
        finally:
            request.stopped.set()

    def close(self) -> None:
        """Stop the loop and wait for its thread (a forward pass cut by the interpreter's exit aborts it)."""
        self.closing.set()
        self.waiting.put(None)  # wakes the loop
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=5)

    # ------------------------------------------------------------------ the loop (its own thread)

    def _loop(self) -> None:
        while not self.closing.is_set():
            try:
                self._admit(block=not self.rows)
                if self.rows:
                    self._step()
            except Exception as error:  # noqa: BLE001 -- every waiting reader learns of it, the loop goes on
                for request in self.rows:
                    request.tokens.put(None)
                self.rows, self.cache, self.mask = [], None, None
                print(f"llm-batcher: {type(error).__name__}: {error}")
        for request in [*self.rows, *self.pending]:
            request.tokens.put(None)

    def _take_waiting(self, block: bool) -> None:
        """Move the newly arrived requests to ``pending`` (waiting up to 0.5 s for one if ``block``)."""
        while True:
            try:
                request = self.waiting.get(timeout=0.5) if block else self.waiting.get_nowait()
            except queue.Empty:
                return
            if request is None or self.closing.is_set():
                return
            block = False
            self.pending.append(request)

    def _fits(self, request: Request) -> bool:
        """Whether the batch has room for ``request`` (an empty batch always has)."""
        width = max(self.mask.shape[1] if self.rows else 0, len(request.prompt_ids))
        return not self.rows or (len(self.rows) + 1) * width <= self.max_batch_positions

    def _admit(self, block: bool) -> None:
        """Compute the prompts of the pending requests that fit, in order of arrival, and add them to the batch
        (a request whose reader went away is dropped, fitting or not)."""
        self._take_waiting(block=block and not self.pending)
        while self.pending and (self.pending[0].stopped.is_set() or self._fits(self.pending[0])):
            request = self.pending.popleft()
            if request.stopped.is_set():
                continue
            with self.lock, torch.inference_mode():
                cache, cached = self.prefix_cache.lookup(request.prompt_ids)
                output = self.model(input_ids=torch.tensor([request.prompt_ids[cached:]]), past_key_values=cache,
                                    use_cache=True, logits_to_keep=1)
                self.prefix_cache.store(request.prompt_ids, output.past_key_values)
            request.length = len(request.prompt_ids)
            if self._emit(request, output.logits[0, -1]):
                self._join(request, output.past_key_values)

    def _emit(self, request: Request, logits: torch.Tensor) -> bool:
        """Pick and send the request's next token; whether it goes on."""
        if request.stopped.is_set() or request.budget <= 0:
            request.tokens.put(None)
            return False
        if request.counts is None:
            request.counts = torch.zeros(logits.numel(), dtype=torch.int32)
        token = request.pick(logits, request.counts)
        request.counts[token] += 1
        request.written += 1
        if token in self.end_ids:
            request.tokens.put(token)
            request.tokens.put(None)
            return False
        request.tokens.put(token)
        request.last = token
        if request.written >= request.budget:
            request.tokens.put(None)
            return False
        return True

    def _join(self, request: Request, cache: DynamicCache) -> None:
        """Add a one-row cache to the batch, left-padding whichever is shorter."""
        new = layers_of(cache)
        new_mask = torch.ones(1, request.length, dtype=torch.long)
        if self.cache is None:
            self.rows, self.cache, self.mask = [request], growing_cache(new), new_mask
            return
        width = max(self.mask.shape[1], request.length)
        running = layers_of(self.cache)
        self.cache = DynamicCache()  # one copy of each layer into a buffer with room (not a cat, then a copy)
        self.cache.layers = [GrowingLayer(_stacked_with_room([k, nk], width), _stacked_with_room([v, nv], width), width)
                             for (k, v), (nk, nv) in zip(running, new)]
        self.mask = torch.cat([_pad(self.mask, width), _pad(new_mask, width)])
        self.rows.append(request)
        self.largest_batch = max(self.largest_batch, len(self.rows))

    def _step(self) -> None:
        """One token for every row, in one forward pass."""
        rows = self.rows
        input_ids = torch.tensor([[request.last] for request in rows])
        positions = torch.tensor([[request.length] for request in rows])
        self.mask = torch.cat([self.mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)
        with self.lock, torch.inference_mode():
            output = self.model(input_ids=input_ids, attention_mask=self.mask, position_ids=positions,
                                past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = output.past_key_values
        keep = []
        for index, request in enumerate(rows):
            request.length += 1
            if self._emit(request, output.logits[index, -1]):
                keep.append(index)
        if len(keep) < len(rows):
            self._keep(keep)

    def _keep(self, keep: list[int]) -> None:
        """Drop the finished rows, and the padding columns no row needs any more."""
        if not keep:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(keep)
        self.rows = [self.rows[i] for i in keep]
        self.mask = self.mask[index]
        first_used = int(self.mask.any(dim=0).int().argmax())
        self.mask = self.mask[:, first_used:]
        self.cache = growing_cache([(k[index, :, first_used:], v[index, :, first_used:])
                                    for k, v in layers_of(self.cache)])


def bytes_per_position(model) -> int:
    """Memory of one cached position of one row: keys and values of every layer."""
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers * 2 * config.num_key_value_heads * head_dim * model.dtype.itemsize


def _pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad a mask [rows, length] or keys/values [rows, heads, length, dim] with zeros to ``width`` positions."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)
