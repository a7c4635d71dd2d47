"""One request's generation: the model (or a vision handler) in a worker thread, its text to an async route.

A :class:`Job` is a request checked and encoded: its prompt's token ids, and the prompt
with the tools listed when the model may call them. ``Job.tool_calls`` decodes tool calls
(``helpers.llm_tools``); ``Job.run`` streams the text answer to the route and stops the
generation when the client goes away. The model cannot see: requests with images get
:data:`CANNOT_SEE`, unless a vision handler was registered (:func:`register_vision_handler`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import json
import threading
from contextlib import closing
from typing import AsyncIterator, Callable, Iterator

import torch

from helpers.llm_server.batching import common_length
from helpers.llm_server.chat import Chat
from helpers.llm_server.engine import Generation, LocalModel, Sampling
from helpers.llm_server.schemas import Base64Source, ImageUrl, RequestError, UrlSource
from helpers.llm_server.structured import schema_text
from helpers.llm_tools import CALL_CLOSE, CALL_OPEN, call_schema, cut_call, parse_tool_calls, with_tools_prompt

CANNOT_SEE = (
    "I can't see images: I am SmolLM2-135M-Instruct, a small text-only model running "
    "on this computer, so the image never reached me. Describe it to me in words, or "
    "set ANTHROPIC_API_KEY / OPENAI_API_KEY to use a model that can see."
)

VisionHandler = Callable[[list, str], str]  # (images: list[PIL.Image], prompt) -> reply
_vision_handler: VisionHandler | None = None
_vision_lock = threading.Lock()  # one image request at a time, like the model


def register_vision_handler(handler: VisionHandler | None) -> None:
    """Answer requests that contain images with ``handler(images, prompt) -> str``.

    ``images`` are the PIL images of the last user message and ``prompt`` its
    text. Pass ``None`` to go back to the honest "I can't see images" reply.
    """
    global _vision_handler
    if handler is not None and not callable(handler):
        raise TypeError("register_vision_handler expects a function fn(images, prompt) -> str, or None.")
    _vision_handler = handler


MAX_IMAGE_PIXELS = 8000 * 8000  # the Anthropic API's largest image side, squared


def decode_image(url_or_source: ImageUrl | Base64Source | UrlSource):
    """A PIL image from base64 data or a data: URL. Web URLs cannot be fetched offline.

    The size in the image's header is checked before its pixels are decoded: a small
    file that would decode to a huge picture (a decompression bomb) is refused.
    """
    from PIL import Image

    if isinstance(url_or_source, Base64Source):
        data = url_or_source.data
    elif url_or_source.url.startswith("data:") and ";base64," in url_or_source.url:
        data = url_or_source.url.split(";base64,", 1)[1]
    else:
        raise RequestError("The local server is offline: send images as base64 data, not as web URLs.")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise RequestError(f"Image is {image.width}x{image.height} pixels: at most 8000x8000 are accepted.")
        image.load()
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError) as error:
        raise RequestError(f"Could not process image: {error}") from None
    return image


def not_a_call(text: str) -> bool:
    """Whether an answer has started as something other than ``<tool_call>``."""
    start = text.lstrip()
    return not (start.startswith(CALL_OPEN) or CALL_OPEN.startswith(start))


@dataclasses.dataclass
class Written:
    """What the model wrote for a tool call: its text, why it ended, and its tokens."""

    text: str
    finish: str  # as Generation.finish, or "gave_up": the answer was not a call
    output_tokens: int


class Job:
    """One request, checked and encoded, ready to stream in a worker thread."""

    def __init__(self, engine: LocalModel, chat: Chat):
        self.engine, self.chat = engine, chat
        self.prompt_ids = engine.encode(chat.messages, chat.prefill)
        if len(self.prompt_ids) >= engine.context:
            raise RequestError(
                f"prompt is too long: {len(self.prompt_ids)} tokens > {engine.context - 1} maximum",
                param="messages",
                code="context_length_exceeded",
            )
        if chat.sampling.json_schema:
            engine.json_grammars.compile(chat.sampling.json_schema)  # a schema it cannot use: 400 now, not later
        handler = _vision_handler
        self.pictures = [decode_image(image) for image in chat.images] if chat.images and handler else []
        seed = chat.sampling.seed  # OpenAI's seed: the same request gives the same samples
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.tools_ids = None  # the prompt with the tools listed, when the model may call them
        self.call_schema = None  # a required call's JSON schema (as text), when a call is required
        if chat.tools and chat.tool_choice != "none" and not chat.prefill:
            tool_messages = with_tools_prompt(chat.messages, chat.tools)
            self.tools_ids = engine.encode(tool_messages)
            if len(self.tools_ids) >= engine.context:
                raise RequestError(
                    f"prompt with tools is too long: {len(self.tools_ids)} tokens > {engine.context - 1} maximum",
                    param="tools",
                    code="context_length_exceeded",
                )
            if chat.tool_choice == "any":
                self.call_schema = schema_text(call_schema(chat.tools, chat.required_tool))
                engine.json_grammars.compile(self.call_schema)  # a tool schema it cannot use: 400 now
        self.billed_ids = self.tools_ids or self.prompt_ids  # the prompt the model reads, and count_tokens counts

    def cache_breakpoints(self) -> list[tuple[int, str]]:
        """(token position, ttl) of each Anthropic ``cache_control`` breakpoint in the billed prompt."""
        chat = self.chat
        messages = with_tools_prompt(chat.messages, chat.tools) if self.tools_ids else chat.messages
        points = []
        for index, end, ttl in chat.cache_breaks:
            content = messages[index]["content"]
            start = self.engine.start_of(messages, index, content if end is None else content[:end])
            points.append((common_length(start, tuple(self.billed_ids)), ttl))
        return points

    async def tool_calls(self, result: Generation) -> list[dict]:
        """The tool calls of the answer (``[{"name", "arguments"}]``); none: answer in text with ``run``.

        A required call is written under its JSON schema's grammar, after ``<tool_call>``;
        in auto mode the model starts on its own and is stopped as soon as its answer is
        not a call (the text answer is then written by ``run``, with the tools in context).
        Both run in the batcher, so the calls of concurrent requests share forward passes.
        """
        chat, engine = self.chat, self.engine
        budget = min(chat.sampling.max_tokens, engine.context - len(self.tools_ids or []))
        if self.tools_ids is None or budget <= 0:
            return []
        if self.call_schema is not None:
            sampling = dataclasses.replace(chat.sampling, max_tokens=budget, stop=[], json_schema=self.call_schema)
            prompt = self.tools_ids + engine.tokens_of(CALL_OPEN)
            written = await asyncio.to_thread(self._write, prompt, sampling)
            cut = written.finish == "length"
            calls = [cut_call(written.text, chat.tools, chat.required_tool)] if cut else json.loads(written.text)
        else:
            sampling = dataclasses.replace(chat.sampling, max_tokens=budget, stop=[CALL_CLOSE], json_schema=None)
            written = await asyncio.to_thread(self._write, self.tools_ids, sampling, not_a_call)
            calls = [] if written.finish == "gave_up" else parse_tool_calls(written.text + CALL_CLOSE, chat.tools)
            cut = False
        calls = calls if chat.parallel_tools else calls[:1]
        if calls:  # a required call cut by max_tokens ends as max_tokens, as in the real APIs
            result.input_tokens, result.output_tokens = len(self.tools_ids), written.output_tokens
            result.finish = "length" if cut else "tool_use"
        return calls

    def _write(self, prompt_ids: list[int], sampling: Sampling, give_up=None) -> "Written":
        """The model's text for a tool call (control tags kept); stops early once ``give_up(text)`` is true."""
        generation, text = Generation(), ""
        pieces = self.engine.stream(prompt_ids, sampling, generation, threading.Event(),
                                    generator=self.generator, control_tags=[])
        with closing(pieces):
            for piece in pieces:
                text += piece
                if give_up is not None and give_up(text):
                    return Written(text, "gave_up", len(self.engine.tokens_of(text)))
        return Written(text, generation.finish, generation.output_tokens)

    def pieces(self, result: Generation, cancelled: threading.Event) -> Iterator[str]:
        reply = None
        if self.chat.images:
            handler = _vision_handler
            if handler and self.pictures:
                with _vision_lock:
                    reply = str(handler(self.pictures, self.chat.question))
            else:
                reply = CANNOT_SEE
        sampling = self.chat.sampling
        # With tools declared and no call made, the answer is written with the tools in context, as the first
        # try was (and billed so: input tokens include the tools, as count_tokens says).
        yield from self.engine.stream(self.billed_ids, sampling, result, cancelled, reply, self.generator)

    async def run(self, result: Generation) -> AsyncIterator[str]:
        """The pieces, produced in a thread; leaving early (client gone) cancels the generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()
        done = object()

        def send(item):
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (server shutting down)
                cancelled.set()

        def produce():
            try:
                for piece in self.pieces(result, cancelled):
                    send(piece)
                send(done)
            except Exception as error:  # reported to the client by the route
                send(error)

        threading.Thread(target=produce, name="llm-generate", daemon=True).start()
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            cancelled.set()


def typed(sdk_type, data: dict) -> dict:
    """``data`` checked against the SDK's own pydantic type of it (``anthropic.types.Message``...).

    A field the SDK requires and the server forgot, or one of the wrong type, fails here
    (and in the tests) instead of in a student's code.
    """
    sdk_type.model_validate(data)
    return data


def sse(data: dict, event: str | None = None) -> str:
    """One server-sent event."""
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"
