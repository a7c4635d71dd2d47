"""Requests of either API turned into one chat: the messages the chat template reads, and how to sample.

:func:`anthropic_chat` and :func:`openai_chat` check what the schemas cannot (tool call and
result pairing, tool declarations, stop sequences) and give a :class:`Chat`: plain-text
messages for SmolLM2's chat template, the sampling parameters, an Anthropic prefill, the
last user message's images and the declared tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from helpers.llm_server.documents import document_text
from helpers.llm_server.engine import DEFAULT_TEMPERATURE, DEFAULT_TOP_P, Sampling
from helpers.llm_server.prompt_caching import ANTHROPIC_MAX_BREAKPOINTS, TTL_SECONDS
from helpers.llm_server.schemas import (
    AnthropicRequest, DocumentBlock, FilePart, ImageBlock, NamedToolChoice, OpenAIRequest, RequestError, TextBlock,
    ToolResultBlock, ToolUseBlock, capped,
)
from helpers.llm_server.structured import ANY_OBJECT, schema_text
from helpers.llm_tools import Tool, arguments_of, call_text, check_tool, pairing_problem, result_text

DEFAULT_MAX_TOKENS = 512  # OpenAI's max_tokens is optional; keep runaway answers short


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
    # Anthropic cache_control breakpoints: (message index, end of the block in its content or None: all, ttl)
    cache_breaks: list[tuple[int, int | None, str]] = field(default_factory=list)


def cache_ttl(cache_control: dict) -> str:
    """The time to live of an Anthropic ``cache_control``; anything but an ephemeral cache is a 400."""
    if cache_control.get("type") != "ephemeral" or set(cache_control) - {"type", "ttl"}:
        raise RequestError('cache_control: only {"type": "ephemeral", "ttl": "5m" or "1h"} is supported.',
                           param="cache_control")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in TTL_SECONDS:
        raise RequestError(f"cache_control.ttl: {ttl!r} is not one of '5m', '1h'.", param="cache_control")
    return ttl


def flatten(content, images: list, breaks: list | None = None) -> str:
    """Text of a message; PDFs become their text; image blocks are collected in ``images`` and shown as [image].

    With ``breaks``, each block that carries ``cache_control`` adds (where it ends in the text, its ttl).
    """
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
        elif isinstance(block, (DocumentBlock, FilePart)):
            parts.append(document_text(block))
        else:
            images.append(block.source if isinstance(block, ImageBlock) else block.image_url)
            parts.append("[image]")
        if breaks is not None and getattr(block, "cache_control", None):
            breaks.append((len("\n".join(parts)), cache_ttl(block.cache_control)))
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
    cache_breaks = []
    if request.system:
        breaks: list = []
        messages.append({"role": "system", "content": flatten(request.system, [], breaks)})
        cache_breaks += [(0, end, ttl) for end, ttl in breaks]
        images.append([])
    for message in request.messages:
        images.append([])
        breaks = []
        messages.append({"role": message.role, "content": flatten(message.content, images[-1], breaks)})
        cache_breaks += [(len(messages) - 1, end, ttl) for end, ttl in breaks]
    # the tools prompt is added to the system message (helpers.llm_tools): a breakpoint on a tool covers all of it
    cache_breaks += [(0, None, cache_ttl(tool.cache_control)) for tool in request.tools or [] if tool.cache_control]
    if len(cache_breaks) > ANTHROPIC_MAX_BREAKPOINTS:
        raise RequestError(f"A maximum of {ANTHROPIC_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                           f"Found {len(cache_breaks)}.", param="cache_control")
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
        json_schema=schema_text(request.output_config.format.schema_)
        if request.output_config and request.output_config.format else None,
    )
    chat = finish_chat(messages, images, sampling, prefill)
    chat.cache_breaks = [(index, end, ttl) for index, end, ttl in cache_breaks if index < len(messages)]
    choice = request.tool_choice
    tools = [Tool(tool.name, tool.description, tool.input_schema) for tool in request.tools or []]
    kind = {"tool": "any", None: "auto"}.get(choice and choice.type, choice and choice.type)
    name = choice.name if choice and choice.type == "tool" else None
    if choice and choice.type == "tool" and not name:
        raise RequestError("tool_choice.name: required when tool_choice.type is 'tool'.", param="tool_choice")
    return add_tools(chat, tools, kind, name, not (choice and choice.disable_parallel_tool_use))


def openai_json_schema(response_format) -> str | None:
    """The schema an answer must follow under OpenAI's ``response_format`` (JSON text), or None for free text."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return schema_text(ANY_OBJECT)
    return schema_text(response_format.json_schema.schema_ or ANY_OBJECT)


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
        json_schema=openai_json_schema(request.response_format),
    )
    chat = finish_chat(messages, images, sampling)
    tools = [Tool(t.function.name, t.function.description, t.function.parameters) for t in request.tools or []]
    choice = request.tool_choice or "auto"
    name = choice.function.name if isinstance(choice, NamedToolChoice) else None
    kind = "any" if name or choice == "required" else choice
    return add_tools(chat, tools, kind, name, request.parallel_tool_calls is not False)
