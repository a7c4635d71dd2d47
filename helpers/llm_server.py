"""A local stand-in for the Anthropic and OpenAI APIs, served by a real small model.

``helpers.llm`` starts this server when no API key is set, so that a notebook
runs the same SDK code offline. It answers with SmolLM2-135M-Instruct
(``helpers.local_model``) on two routes:

- ``POST /v1/messages``          Anthropic Messages API (``anthropic.Anthropic``)
- ``POST /v1/messages/count_tokens``  Anthropic token counting
- ``POST /v1/chat/completions``  OpenAI Chat Completions (``openai.OpenAI``)
- ``GET  /v1/models``            the one model it serves, in either shape

Tool use works without streaming (Anthropic ``tools``/``tool_choice`` with
``tool_use``/``tool_result`` blocks, OpenAI ``tools``/``tool_choice`` with
``tool_calls`` and ``tool`` messages), in SmolLM2's own function-calling format
(``helpers.llm_tools``; a 135M model is an unreliable tool caller: chapter 09
measures it). Streaming (server-sent events), ``system``, ``max_tokens``, ``temperature``
(0 = greedy, also the default here), ``top_p``, ``top_k``, stop sequences,
OpenAI's ``seed``, ``frequency_penalty`` and ``presence_penalty``, usage counts
and finish reasons work as in the real APIs; bad requests get each API's error JSON and
status code, so the SDKs raise their usual exceptions. The model cannot see:
image blocks get an honest reply, unless a vision handler was registered
(:func:`register_vision_handler`).

The server runs in a background thread of the current process (one per
process), on a free port of 127.0.0.1. Requests are generated one at a time
(a lock around the model); a client that disconnects mid-stream stops its
generation.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import io
import json
import socket
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from typing import Annotated, Any, AsyncIterator, Callable, Iterator, Literal, Union

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helpers.llm import LOCAL_MODEL
from helpers.llm_tools import (
    Tool, arguments_of, auto_calls, call_text, check_tool, pairing_problem, required_call, result_text,
    tools_prefix_length, with_tools_prompt,
)
from helpers.local_model import load_smollm2

# Used when a request leaves them out. Real providers choose per-model defaults
# too; this one decodes greedily, so that answers are reproducible (notebooks are
# tested) and SmolLM2 stays on topic: at temperature 1 it rambles, and even at
# 0.2 it names Paris as France's capital only 3 times in 4. Pass a temperature
# to sample.
DEFAULT_TEMPERATURE = 0.0
DEFAULT_TOP_P = 1.0
DEFAULT_MAX_TOKENS = 512  # OpenAI's max_tokens is optional; keep runaway answers short
# The model ids the server answers to, and a cap on answers' length. Once a stand-in for the real APIs
# has started (helpers.api_stand_in, keyed-path tests only), the real course models' ids are served too
# and every answer is capped.
SERVED_MODELS = {LOCAL_MODEL}
max_tokens_cap: int | None = None
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


# --------------------------------------------------------------------------- the model


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

    def __init__(self):
        self.model, self.tokenizer = load_smollm2()
        self.context = self.model.config.max_position_embeddings
        end_of_text = self.tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.end_ids = {self.tokenizer.eos_token_id, end_of_text}
        self.lock = threading.Lock()  # one generation at a time
        self.text_lock = threading.Lock()  # the fast tokenizer is not safe across threads
        self.closing = threading.Event()
        self.rng = torch.Generator().manual_seed(0)  # reproducible from a fresh start, varied across calls

    def encode(self, messages: list[dict], prefill: str = "") -> list[int]:
        """Token ids of a chat (``[{"role", "content"}]``) ready for the assistant's turn."""
        with self.text_lock:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return self.tokenizer(text + prefill, add_special_tokens=False).input_ids

    def tokens_of(self, text: str) -> list[int]:
        with self.text_lock:
            return self.tokenizer(text, add_special_tokens=False).input_ids

    def text_of(self, ids: list[int]) -> str:
        with self.text_lock:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _sample(self, prompt_ids: list[int], sampling: Sampling, generator: torch.Generator) -> Iterator[int]:
        """New token ids, one forward pass each, reusing the key/value cache. Holds the lock."""
        with self.lock, torch.inference_mode():
            input_ids, cache = torch.tensor([prompt_ids]), None
            counts = None  # how often each token was generated so far (for the penalties)
            while True:
                # logits_to_keep=1: only the last position's logits (the prompt's would cost ~20% more time)
                output = self.model(input_ids=input_ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = output.past_key_values
                logits = output.logits[0, -1]
                if counts is None:
                    counts = torch.zeros(logits.numel(), dtype=torch.int32)
                token = pick_token(penalize(logits, counts, sampling), sampling, generator)
                counts[token] += 1
                yield token
                input_ids = torch.tensor([[token]])

    def stream(
        self,
        prompt_ids: list[int],
        sampling: Sampling,
        result: Generation,
        cancelled: threading.Event,
        reply: str | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text piece by piece and fill in ``result``.

        The model writes the answer, or, when ``reply`` is given (image requests),
        that fixed text is played back with the same limits and stop sequences.
        Sampling draws from ``generator``, or from the server's own seeded one.
        """
        result.input_tokens = len(prompt_ids)
        budget = min(sampling.max_tokens, self.context - len(prompt_ids))
        if reply is None:
            tokens = self._sample(prompt_ids, sampling, generator or self.rng)
        else:
            tokens = (token for token in [*self.tokens_of(reply), self.tokenizer.eos_token_id])
        new_ids: list[int] = []
        text, sent = "", 0
        with closing(tokens):  # releases the model's lock as soon as we stop
            for token in tokens if budget > 0 else ():
                if cancelled.is_set() or self.closing.is_set():
                    return
                if token in self.end_ids:
                    result.finish = "stop"
                    break
                new_ids.append(token)
                text = self.text_of(new_ids)
                hits = [(text.find(stop), stop) for stop in sampling.stop if stop in text]
                if hits:
                    cut, result.stop_sequence = min(hits)
                    text, result.finish = text[:cut], "stop_sequence"
                    break
                ready = len(text) - held_back(text, sampling.stop)
                if ready > sent:
                    yield text[sent:ready]
                    sent = ready
                if len(new_ids) == budget:
                    result.finish = "length"
                    break
        result.output_tokens = len(new_ids)
        if len(text) > sent:
            yield text[sent:]


# --------------------------------------------------------------------------- requests


class RequestError(Exception):
    """A bad request, reported in the shape of whichever API was called."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.status, self.param, self.code = message, status, param, code


class Strict(BaseModel):
    # strict: "20" is not an int; extra fields (metadata, cache_control...) are ignored
    model_config = ConfigDict(strict=True, extra="allow")


class TextBlock(Strict):
    type: Literal["text"]
    text: str


class Base64Source(Strict):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(Strict):
    type: Literal["url"]
    url: str


class ImageBlock(Strict):
    type: Literal["image"]
    source: Annotated[Union[Base64Source, UrlSource], Field(discriminator="type")]


class ToolUseBlock(Strict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(Strict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock] | None = None
    is_error: bool = False


AnthropicBlock = Annotated[Union[TextBlock, ImageBlock, ToolUseBlock, ToolResultBlock], Field(discriminator="type")]


class AnthropicMessage(Strict):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class AnthropicTool(Strict):
    name: str
    description: str = ""
    input_schema: dict[str, Any]


class AnthropicToolChoice(Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class AnthropicRequest(Strict):
    model: str
    max_tokens: int = Field(ge=0)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None


class AnthropicCountRequest(AnthropicRequest):
    max_tokens: int | None = Field(None, ge=0)  # not needed to count


class ImageUrl(Strict):
    url: str


class ImageUrlPart(Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


class FunctionCall(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class OpenAIMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[Union[TextBlock, ImageUrlPart], Field(discriminator="type")]] | None = None
    tool_calls: list[ToolCall] | None = None  # assistant
    tool_call_id: str | None = None  # tool


class FunctionDefinition(Strict):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class OpenAITool(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: str


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(Strict):
    include_usage: bool = False


class OpenAIRequest(Strict):
    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # the older name of max_completion_tokens
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[OpenAITool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None


def capped(max_tokens: int) -> int:
    """``max_tokens``, or the stand-in's cap when that is lower (an answer cut there ends as max_tokens)."""
    return max_tokens if max_tokens_cap is None else min(max_tokens, max_tokens_cap)


def parse(schema: type[Strict], body: bytes) -> Any:
    """Validate a JSON body; the first (deepest) problem becomes a RequestError."""
    try:
        request = schema.model_validate_json(body)
    except ValidationError as error:
        problem = max(error.errors(include_url=False), key=lambda e: len(e["loc"]))
        # drop pydantic's union labels ("str", "list[...]") from the location
        where = ".".join(str(p) for p in problem["loc"] if not str(p).endswith("]") and p != "str")
        raise RequestError(f"{where}: {problem['msg']}" if where else problem["msg"], param=where or None)
    if getattr(request, "tools", None) and request.stream:
        raise RequestError(
            "The local server does not stream tool calls: call without stream=True (or set an API key).",
            param="stream",
        )
    if request.model not in SERVED_MODELS:
        raise RequestError(
            f"The local server only serves the model {LOCAL_MODEL!r}, not {request.model!r}. "
            "Use helpers.llm.default_model(client) to choose the model id.",
            status=404,
            param="model",
            code="model_not_found",
        )
    return request


def decode_image(url_or_source: ImageUrl | Base64Source | UrlSource):
    """A PIL image from base64 data or a data: URL. Web URLs cannot be fetched offline."""
    from PIL import Image

    if isinstance(url_or_source, Base64Source):
        data = url_or_source.data
    elif url_or_source.url.startswith("data:") and ";base64," in url_or_source.url:
        data = url_or_source.url.split(";base64,", 1)[1]
    else:
        raise RequestError("The local server is offline: send images as base64 data, not as web URLs.")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        image.load()
    except (binascii.Error, OSError, ValueError) as error:
        raise RequestError(f"Could not process image: {error}") from None
    return image


@dataclass
class Chat:
    """A request in the form every route shares."""

    messages: list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}]
    sampling: Sampling
    prefill: str = ""  # Anthropic: a final assistant message that the answer continues
    images: list = field(default_factory=list)  # the last user message's image blocks
    question: str = ""  # the last user message's text
    tools: list[Tool] = field(default_factory=list)  # declared tools (helpers.llm_tools)
    tool_choice: str = "auto"  # "auto", "any" (a call is required) or "none"
    required_tool: str | None = None  # the tool that must be called
    parallel_tools: bool = True


def flatten(content, images: list) -> str:
    """Text of a message; image blocks are collected in ``images`` and shown as [image]."""
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for block in content:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            parts.append(call_text([{"name": block.name, "arguments": block.input}]))
        elif isinstance(block, ToolResultBlock):
            parts.append(result_text(flatten(block.content, images), block.is_error))
        else:
            images.append(block.source if isinstance(block, ImageBlock) else block.image_url)
            parts.append("[image]")
    return "\n".join(parts)


def finish_chat(messages: list[dict], images: list[list], sampling: Sampling, prefill: str = "") -> Chat:
    """Wrap up a chat; ``images[i]`` holds the image blocks of ``messages[i]``."""
    chat = Chat(messages=messages, sampling=sampling, prefill=prefill)
    users = [i for i, message in enumerate(messages) if message["role"] == "user"]
    if users:
        chat.images = images[users[-1]]
        chat.question = messages[users[-1]]["content"].replace("[image]", "").strip()
    return chat


def add_tools(chat: Chat, tools: list[Tool], choice: str, name: str | None, parallel: bool) -> Chat:
    """Check the declared tools and the tool choice, and attach them to ``chat``."""
    for tool in tools:
        if problem := check_tool(tool.name, tool.parameters):
            raise RequestError(f"tools: {problem}", param="tools")
    if len({tool.name for tool in tools}) < len(tools):
        raise RequestError("tools: tool names must be unique.", param="tools")
    if (choice != "auto" or name) and not tools:
        raise RequestError("tool_choice is only allowed when tools are specified.", param="tool_choice")
    if name is not None and name not in {tool.name for tool in tools}:
        raise RequestError(f"tool_choice: no tool named {name!r} in tools.", param="tool_choice")
    chat.tools, chat.tool_choice, chat.required_tool, chat.parallel_tools = tools, choice, name, parallel
    return chat


def anthropic_chat(request: AnthropicRequest) -> Chat:
    images: list[list] = []
    messages = []
    if request.system:
        system = request.system
        if not isinstance(system, str):
            system = "\n".join(block.text for block in system)
        messages.append({"role": "system", "content": system})
        images.append([])
    for message in request.messages:
        images.append([])
        messages.append({"role": message.role, "content": flatten(message.content, images[-1])})
    blocks = [[] if isinstance(message.content, str) else message.content for message in request.messages]
    turns = [([b.id for b in bs if isinstance(b, ToolUseBlock)],
              [b.tool_use_id for b in bs if isinstance(b, ToolResultBlock)]) for bs in blocks]
    if problem := pairing_problem(turns):
        raise RequestError(f"messages: {problem}", param="messages")
    prefill = ""
    if messages[-1]["role"] == "assistant":
        prefill = messages.pop()["content"].rstrip()  # the API ignores trailing whitespace too
    sampling = Sampling(
        max_tokens=capped(request.max_tokens),
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
        top_k=request.top_k,
        stop=[s for s in request.stop_sequences or [] if s],
    )
    chat = finish_chat(messages, images, sampling, prefill)
    choice = request.tool_choice
    tools = [Tool(tool.name, tool.description, tool.input_schema) for tool in request.tools or []]
    kind = {"tool": "any", None: "auto"}.get(choice and choice.type, choice and choice.type)
    name = choice.name if choice and choice.type == "tool" else None
    if choice and choice.type == "tool" and not name:
        raise RequestError("tool_choice.name: required when tool_choice.type is 'tool'.", param="tool_choice")
    return add_tools(chat, tools, kind, name, not (choice and choice.disable_parallel_tool_use))


def openai_chat(request: OpenAIRequest) -> Chat:
    images: list[list] = []
    messages = []
    turns: list[tuple[list[str], list[str]]] = []  # tool call ids made / answered, per turn
    for index, message in enumerate(request.messages):
        images.append([])
        role = {"developer": "system", "tool": "user"}.get(message.role, message.role)
        content = flatten(message.content, images[-1])
        calls = [call.id for call in message.tool_calls or []] if message.role == "assistant" else []
        if calls:
            written = [{"name": call.function.name, "arguments": arguments_of(call.function.arguments) or {}}
                       for call in message.tool_calls]
            content = "\n".join(filter(None, [content, call_text(written)]))
        results = []
        if message.role == "tool":
            if not message.tool_call_id:
                raise RequestError(f"messages.{index}.tool_call_id: Field required", param=f"messages.{index}")
            content, results = result_text(content), [message.tool_call_id]
        if results and turns and turns[-1][1]:  # tool messages in a row answer the same assistant message
            turns[-1][1].extend(results)
        else:
            turns.append((calls, results))
        messages.append({"role": role, "content": content})
    if problem := pairing_problem(turns):
        raise RequestError(f"messages: {problem}", param="messages")
    stop = [request.stop] if isinstance(request.stop, str) else request.stop or []
    if len(stop) > 4:
        raise RequestError("stop: at most 4 stop sequences are allowed.", param="stop")
    sampling = Sampling(
        max_tokens=capped(request.max_completion_tokens or request.max_tokens or DEFAULT_MAX_TOKENS),
        temperature=DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=DEFAULT_TOP_P if request.top_p is None else request.top_p,
        stop=[s for s in stop if s],
        seed=request.seed,
        frequency_penalty=request.frequency_penalty or 0.0,
        presence_penalty=request.presence_penalty or 0.0,
    )
    chat = finish_chat(messages, images, sampling)
    tools = [Tool(t.function.name, t.function.description, t.function.parameters) for t in request.tools or []]
    choice = request.tool_choice or "auto"
    name = choice.function.name if isinstance(choice, NamedToolChoice) else None
    kind = "any" if name or choice == "required" else choice
    return add_tools(chat, tools, kind, name, request.parallel_tool_calls is not False)


# --------------------------------------------------------------------------- generation


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
        handler = _vision_handler
        self.pictures = [decode_image(image) for image in chat.images] if chat.images and handler else []
        seed = chat.sampling.seed  # OpenAI's seed: the same request gives the same samples
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.tools_ids, self.tools_prefix = None, 0  # the prompt with the tools listed, when the model may call them
        if chat.tools and chat.tool_choice != "none" and not chat.prefill:
            tool_messages = with_tools_prompt(chat.messages, chat.tools)
            self.tools_ids = engine.encode(tool_messages)
            self.tools_prefix = tools_prefix_length(engine, tool_messages, self.tools_ids)  # cached across requests
            if len(self.tools_ids) >= engine.context:
                raise RequestError(
                    f"prompt with tools is too long: {len(self.tools_ids)} tokens > {engine.context - 1} maximum",
                    param="tools",
                    code="context_length_exceeded",
                )

    async def tool_calls(self, result: Generation) -> list[dict]:
        """The tool calls of the answer (``[{"name", "arguments"}]``); none: answer in text with ``run``."""
        chat, engine = self.chat, self.engine
        budget = min(chat.sampling.max_tokens, engine.context - len(self.tools_ids or []))
        if self.tools_ids is None or budget <= 0:
            return []
        generator = self.generator or engine.rng

        def pick(logits: torch.Tensor) -> int:
            return pick_token(logits, chat.sampling, generator)

        if chat.tool_choice == "any":  # a call is required: written with constrained decoding
            call, used = await asyncio.to_thread(
                required_call, engine, self.tools_ids, chat.tools, chat.required_tool, budget, pick, self.tools_prefix
            )
            calls = [call]
        else:
            calls, used = await asyncio.to_thread(
                auto_calls, engine, self.tools_ids, chat.tools, budget, pick, self.tools_prefix
            )
        calls = calls if chat.parallel_tools else calls[:1]
        if calls:
            result.input_tokens, result.output_tokens, result.finish = len(self.tools_ids), used, "tool_use"
        return calls

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
        yield from self.engine.stream(self.prompt_ids, sampling, result, cancelled, reply, self.generator)

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


def sse(data: dict, event: str | None = None) -> str:
    """One server-sent event."""
    return (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"


# --------------------------------------------------------------------------- Anthropic route


def anthropic_error(error: RequestError) -> JSONResponse:
    kind = {404: "not_found_error", 500: "api_error"}.get(error.status, "invalid_request_error")
    body = {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": f"req_local_{uuid.uuid4().hex[:24]}",
    }
    return JSONResponse(body, status_code=error.status)


ANTHROPIC_STOP = {
    "stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence", "tool_use": "tool_use",
}


async def anthropic_messages(engine: LocalModel, body: bytes):
    try:
        request = parse(AnthropicRequest, body)
        job = Job(engine, anthropic_chat(request))
    except RequestError as error:
        return anthropic_error(error)
    result = Generation()
    message = {
        "id": f"msg_local_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": LOCAL_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": len(job.prompt_ids), "output_tokens": 0},
    }
    if not request.stream:
        try:
            calls = await job.tool_calls(result)
            text = "" if calls else "".join([piece async for piece in job.run(result)])
        except Exception as error:
            return anthropic_error(RequestError(f"The local model failed: {error!r}", status=500))
        message["content"] = [
            {"type": "tool_use", "id": f"toolu_local_{uuid.uuid4().hex[:24]}", "name": call["name"],
             "input": call["arguments"]}
            for call in calls
        ] or [{"type": "text", "text": text}]
        message["usage"]["input_tokens"] = result.input_tokens
        message["stop_reason"] = ANTHROPIC_STOP[result.finish]
        message["stop_sequence"] = result.stop_sequence
        message["usage"]["output_tokens"] = result.output_tokens
        return JSONResponse(message)

    async def events():
        yield sse({"type": "message_start", "message": message}, "message_start")
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield sse(block, "content_block_start")
        try:
            async for piece in job.run(result):
                delta = {"type": "text_delta", "text": piece}
                yield sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta")
        except Exception as error:
            failure = {"type": "api_error", "message": f"The local model failed: {error!r}"}
            yield sse({"type": "error", "error": failure}, "error")
            return
        yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        delta = {"stop_reason": ANTHROPIC_STOP[result.finish], "stop_sequence": result.stop_sequence}
        usage = {"output_tokens": result.output_tokens}
        yield sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
        yield sse({"type": "message_stop"}, "message_stop")

    return StreamingResponse(events(), media_type="text/event-stream")


async def anthropic_count_tokens(engine: LocalModel, body: bytes):
    try:
        request = parse(AnthropicCountRequest, body)
        request.max_tokens = request.max_tokens or 0
        job = Job(engine, anthropic_chat(request))
    except RequestError as error:
        return anthropic_error(error)
    return JSONResponse({"input_tokens": len(job.tools_ids or job.prompt_ids)})


# --------------------------------------------------------------------------- OpenAI route


def openai_error(error: RequestError) -> JSONResponse:
    kind = "server_error" if error.status >= 500 else "invalid_request_error"
    body = {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}
    return JSONResponse(body, status_code=error.status)


OPENAI_FINISH = {"stop": "stop", "length": "length", "stop_sequence": "stop", "tool_use": "tool_calls"}


async def openai_chat_completions(engine: LocalModel, body: bytes):
    try:
        request = parse(OpenAIRequest, body)
        job = Job(engine, openai_chat(request))
    except RequestError as error:
        return openai_error(error)
    completion_id = f"chatcmpl-local-{uuid.uuid4().hex[:24]}"
    head = {"id": completion_id, "created": int(time.time()), "model": LOCAL_MODEL}
    results = [Generation() for _ in range(request.n)]

    def usage() -> dict:
        completion = sum(result.output_tokens for result in results)
        prompt = results[0].input_tokens or len(job.prompt_ids)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "completion_tokens_details": {"reasoning_tokens": 0}}  # as the real API: SmolLM2 does not reason

    if not request.stream:
        choices = []
        try:
            for index, result in enumerate(results):
                calls = await job.tool_calls(result)
                text = "" if calls else "".join([piece async for piece in job.run(result)])
                answer = {"role": "assistant", "content": None if calls else text, "refusal": None}
                if calls:
                    answer["tool_calls"] = [
                        {"id": f"call_local_{uuid.uuid4().hex[:24]}", "type": "function",
                         "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                        for call in calls
                    ]
                finish = OPENAI_FINISH[result.finish]
                choices.append({"index": index, "message": answer, "finish_reason": finish, "logprobs": None})
        except Exception as error:
            return openai_error(RequestError(f"The local model failed: {error!r}", status=500))
        return JSONResponse({**head, "object": "chat.completion", "choices": choices, "usage": usage()})

    def chunk(choices: list, **extra) -> str:
        return sse({**head, "object": "chat.completion.chunk", "choices": choices, **extra})

    async def events():
        try:
            for index, result in enumerate(results):
                opening = {"role": "assistant", "content": ""}
                yield chunk([{"index": index, "delta": opening, "finish_reason": None}])
                async for piece in job.run(result):
                    yield chunk([{"index": index, "delta": {"content": piece}, "finish_reason": None}])
                yield chunk([{"index": index, "delta": {}, "finish_reason": OPENAI_FINISH[result.finish]}])
        except Exception as error:
            yield sse({"error": {"message": f"The local model failed: {error!r}", "type": "server_error"}})
            return
        if request.stream_options and request.stream_options.include_usage:
            yield chunk([], usage=usage())
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


# --------------------------------------------------------------------------- app and server


def create_app(engine: LocalModel) -> FastAPI:
    app = FastAPI(title="Local LLM API (SmolLM2-135M-Instruct)")

    @app.post("/v1/messages")
    async def messages(request: Request):
        return await anthropic_messages(engine, await request.body())

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request):
        return await anthropic_count_tokens(engine, await request.body())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await openai_chat_completions(engine, await request.body())

    @app.get("/v1/models")
    async def models(request: Request):
        if "anthropic-version" in request.headers:
            model = {"type": "model", "id": LOCAL_MODEL, "display_name": "SmolLM2 135M Instruct (local)",
                     "created_at": "2024-11-01T00:00:00Z"}
            return {"data": [model], "has_more": False, "first_id": LOCAL_MODEL, "last_id": LOCAL_MODEL}
        model = {"id": LOCAL_MODEL, "object": "model", "created": 1730419200, "owned_by": "HuggingFaceTB"}
        return {"object": "list", "data": [model]}

    return app


class LocalServer:
    """The API server in a background thread: ``LocalServer().start()``, then ``.base_url``."""

    def __init__(self, stand_in: bool = False):
        self.engine: LocalModel | None = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = 0
        self.stand_in = stand_in  # a stand-in for the real APIs (helpers.api_stand_in), for tests

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "LocalServer":
        self.engine = LocalModel()  # load the model first: errors show here, not at the first request
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # port 0: the system picks a free port
        self.port = sock.getsockname()[1]
        app = create_app(self.engine)
        if self.stand_in:
            from helpers.api_stand_in import create_stand_in_app

            app = create_stand_in_app(app, SERVED_MODELS)
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False,
            lifespan="off", timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="llm-server", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The local LLM server did not start; see the log above.")
            time.sleep(0.02)
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop generating, close the server and wait for its thread."""
        if self.engine is not None:
            self.engine.closing.set()
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)


_server: LocalServer | None = None
_server_lock = threading.Lock()


def get_server() -> LocalServer:
    """The process's local server, started (and the model loaded) on first use."""
    global _server
    with _server_lock:
        if _server is None or not _server.thread.is_alive():
            _server = LocalServer().start()
        return _server



_stand_in: LocalServer | None = None


def get_stand_in() -> LocalServer:
    """The process's stand-in for the real APIs (keyed-path tests), started on first use.

    It serves the course's real model ids too and caps every answer (``helpers.api_stand_in``)."""
    global _stand_in, max_tokens_cap
    from helpers.api_stand_in import STAND_IN_MAX_TOKENS
    from helpers.models import ANTHROPIC_MODEL, OPENAI_MODEL

    with _server_lock:
        if _stand_in is None or not _stand_in.thread.is_alive():
            SERVED_MODELS.update({ANTHROPIC_MODEL, OPENAI_MODEL})
            max_tokens_cap = STAND_IN_MAX_TOKENS
            _stand_in = LocalServer(stand_in=True).start()
        return _stand_in
