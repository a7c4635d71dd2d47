"""Tool use (function calling) for the local SmolLM2 server (``helpers.llm_server``).

SmolLM2-Instruct learned function calling from Argilla's Synth-APIGen data in
one format (the SmolLM2 model card's): the tools' JSON schemas inside
``<tools>...</tools>`` in the system prompt, and calls written as

    <tool_call>[{"name": "calculator", "arguments": {"expression": "37 * 48"}}]</tool_call>

This module renders requests in that format, parses the model's calls
robustly (JSON, Python-style quotes, a missing closing tag) and, when a call
is *required* (Anthropic ``tool_choice={"type": "any"|"tool"}``, OpenAI
``tool_choice="required"`` or a named function), writes the call with
constrained decoding: the tool's name is chosen among the declared ones by
the model's own token probabilities, the JSON keys come from the schema, and
the model writes only the values. Tool results are shown to the model as
``<tool_response>...</tool_response>`` user turns. The system message that
lists the tools is computed once and its key/value cache reused by the next
requests with the same tools (an agent sends it at every step).

Measured honestly in chapter 09: the 135M model almost never starts a call on
its own (``tool_choice`` auto); with a required call it picks the right tool
and copies sensible arguments most of the time, not always.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

TOOL_SYSTEM_PROMPT = """You are an expert in composing functions. You are given a question and a set of possible functions. 
Based on the question, you will need to make one or more function/tool calls to achieve the purpose. 
If none of the functions can be used, point it out and refuse to answer. 
If the given question lacks the parameters required by the function, also point it out.

You have access to the following tools:
<tools>{tools}</tools>

The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is needed, please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
... (more tool calls as required)
]</tool_call>"""

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # both APIs' rule for tool names
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass
class Tool:
    """A declared tool, in the form both APIs share."""

    name: str
    description: str
    parameters: dict  # a JSON schema of type "object"

    def schema(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def keys(self) -> list[str]:
        """The argument names the model fills in a required call: the schema's required ones, else all."""
        properties = self.parameters.get("properties") or {}
        required = [key for key in self.parameters.get("required") or [] if key in properties]
        return required or list(properties)


def check_tool(name: str, parameters: Any) -> str | None:
    """What is wrong with a tool declaration, or None."""
    if not NAME_PATTERN.match(name):
        return f"tool name {name!r} must match {NAME_PATTERN.pattern}"
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        return f"the schema of tool {name!r} must be a JSON schema of type 'object'"
    return None


def tools_prompt(tools: list[Tool]) -> str:
    """The system prompt that lists ``tools`` in SmolLM2's function-calling format."""
    return TOOL_SYSTEM_PROMPT.format(tools=json.dumps([tool.schema() for tool in tools]))


def with_tools_prompt(messages: list[dict], tools: list[Tool]) -> list[dict]:
    """``messages`` with the tools prompt as (or added to) the system message."""
    prompt = tools_prompt(tools)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + prompt}, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def call_text(calls: list[dict]) -> str:
    """Calls (``[{"name", "arguments"}]``) as the model writes them."""
    items = [{"name": call["name"], "arguments": call["arguments"]} for call in calls]
    return f"{CALL_OPEN}{json.dumps(items)}{CALL_CLOSE}"


def result_text(content: str, is_error: bool = False) -> str:
    """A tool's result as the model reads it."""
    return f"<tool_response>\n{'Error: ' if is_error else ''}{content}\n</tool_response>"


def loads_loosely(text: str) -> Any:
    """JSON, or the JSON-like text small models write (single quotes, True/None, trailing text)."""
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-z]*\s*|\s*```$", "", text)
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    for start, opening in ((text.find(c), c) for c in "[{"):
        if start < 0:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
            return value
        except ValueError:
            closing = "]" if opening == "[" else "}"
            end = text.rfind(closing)
            if end > start:
                try:
                    return ast.literal_eval(text[start : end + 1])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    pass
    raise ValueError(f"not JSON: {text[:80]!r}")


def arguments_of(value: Any) -> dict | None:
    """A call's arguments as a dict (they may arrive as a JSON string), or None."""
    if isinstance(value, str):
        try:
            value = loads_loosely(value) if value.strip() else {}
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def parse_tool_calls(text: str, tools: list[Tool]) -> list[dict]:
    """The valid calls in a model's answer: ``[{"name", "arguments"}]``, possibly empty.

    Reads every ``<tool_call>...</tool_call>`` section (the closing tag may be
    missing), accepts a list or a single object, ``arguments`` or
    ``parameters``, and drops calls to undeclared tools or without a dict of
    arguments.
    """
    names = {tool.name for tool in tools}
    calls = []
    for section in re.findall(r"<tool_call>(.*?)(?:</tool_call>|$)", text, flags=re.DOTALL):
        try:
            items = loads_loosely(section)
        except ValueError:
            continue
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict) or item.get("name") not in names:
                continue
            arguments = arguments_of(item.get("arguments", item.get("parameters", {})))
            if arguments is not None:
                calls.append({"name": item["name"], "arguments": arguments})
    return calls


# --------------------------------------------------------------------------- generation


class Cursor:
    """A prompt that grows, with its key/value cache: feed text, choose among options, generate.

    The prompt starts from the engine's prompt-prefix cache (``helpers.llm_server.batching``):
    the system message that lists the tools, the same in every request of an agent, is
    computed once, like the prompt caching of the real APIs. The caller holds the
    engine's lock while using a cursor.
    """

    def __init__(self, engine, prompt_ids: list[int]):
        self.engine, self.logits = engine, None
        self.unfed = ""  # text the last generate() returned that is not in the cache
        self.cache, self.length = engine.prefix_cache.lookup(prompt_ids)
        self.feed(prompt_ids[self.length :])
        engine.prefix_cache.store(prompt_ids, self.cache)

    @torch.inference_mode()
    def feed(self, ids: list[int]) -> None:
        if not ids:
            return
        output = self.engine.model(
            input_ids=torch.tensor([ids]), past_key_values=self.cache, use_cache=True, logits_to_keep=1
        )
        self.cache, self.logits = output.past_key_values, output.logits[0, -1].clone()
        self.length += len(ids)

    def feed_text(self, text: str) -> None:
        self.feed(self.engine.tokens_of(text))

    def choose(self, options: list[str], suffix: str = "") -> str:
        """Feed the option (and ``suffix``) the model prefers, token by token among the options' tokens."""
        remaining = {option: self.engine.tokens_of(option + suffix) for option in options}
        position = 0
        while len(remaining) > 1:
            allowed = {ids[position] for ids in remaining.values() if len(ids) > position}
            if not allowed:
                break
            token = max(allowed, key=lambda t: float(self.logits[t]))
            remaining = {o: ids for o, ids in remaining.items() if len(ids) > position and ids[position] == token}
            self.feed([token])
            position += 1
        option, ids = next(iter(remaining.items()))
        self.feed(ids[position:])
        return option

    def generate(
        self, max_tokens: int, pick: Callable[[torch.Tensor], int], stops: list[str] = (),
        give_up: Callable[[str], bool] | None = None,
    ) -> tuple[str, int, str]:
        """(text, tokens, finish): finish is "stop", "stop_sequence", "length" or "gave_up".

        A token that completes a stop sequence is not fed: what it adds before
        the stop is left in ``self.unfed``, for the caller to feed as text.
        """
        new_ids: list[int] = []
        text, self.unfed = "", ""
        while len(new_ids) < max_tokens and self.length < self.engine.context:
            if self.engine.closing.is_set():
                break
            token = pick(self.logits)
            if token in self.engine.end_ids:
                return text, len(new_ids), "stop"
            extended = self.engine.text_of(new_ids + [token])
            hits = [extended.find(stop) for stop in stops if stop in extended]
            if hits:
                cut = min(hits)
                self.unfed = extended[len(text) : cut] if extended.startswith(text) and cut >= len(text) else ""
                return extended[:cut], len(new_ids) + 1, "stop_sequence"
            new_ids.append(token)
            self.feed([token])
            text = extended
            if give_up is not None and give_up(text):
                return text, len(new_ids), "gave_up"
        return text, len(new_ids), "length"


def _is_string(schema: dict) -> bool:
    return schema.get("type", "string") == "string" and not schema.get("enum")


def _value(cursor: Cursor, schema: dict, budget: int, pick) -> tuple[Any, int]:
    """Let the model write one argument's value, shaped by its JSON schema type; (value, tokens).

    The cursor stands after ``"key": `` (and the opening quote, for strings).
    """
    kind = schema.get("type", "string")
    if schema.get("enum"):
        options = {json.dumps(option): option for option in schema["enum"]}
        return options[cursor.choose(list(options))], 1
    if kind == "boolean":
        return cursor.choose(["true", "false"]) == "true", 1
    if kind in ("integer", "number"):
        text, used, _ = cursor.generate(min(budget, 16), pick, stops=[",", "}", "\n"])
        match = NUMBER.search(text)
        if not match:
            return text.strip(), used  # not a number: the tool will say so
        written = match.group()
        number = float(written)
        whole = number.is_integer() and (kind == "integer" or not re.search("[.eE]", written))
        return (int(number) if whole else number), used
    if kind in ("object", "array"):
        text, used, _ = cursor.generate(min(budget, 48), pick, stops=["\n"])
        try:
            return json.JSONDecoder().raw_decode(text.strip())[0], used
        except ValueError:
            return None, used
    text, used, _ = cursor.generate(min(budget, 64), pick, stops=['"'])
    return text.strip(), used


def required_call(engine, prompt_ids: list[int], tools: list[Tool], name: str | None, budget: int, pick):
    """One call written with constrained decoding; returns (call, output tokens, whether ``budget`` cut it).

    The name is ``name`` or the declared tool the model prefers; the keys
    follow the schema, the model writes each value. The fixed parts are fed in
    whole pieces (``"key": "``), tokenized as the model saw them in training.
    Holds the engine's lock.
    """
    with engine.lock:
        cursor = Cursor(engine, prompt_ids)
        cursor.feed_text('<tool_call>[{"name": "')
        if name is None:
            name = cursor.choose([tool.name for tool in tools], suffix='"')
        else:
            cursor.feed_text(name + '"')
        tool = next(tool for tool in tools if tool.name == name)
        properties = tool.parameters.get("properties") or {}
        pending = ', "arguments": {'  # fixed text not fed yet
        used = 0  # tokens the model wrote
        arguments: dict = {}
        for key in tool.keys():
            if used >= budget:
                break
            schema = properties.get(key) or {}
            opening = '"' if _is_string(schema) else ""
            cursor.feed_text(pending + (", " if arguments else "") + json.dumps(key) + ": " + opening)
            value, tokens = _value(cursor, schema, budget - used, pick)
            used += tokens
            pending = cursor.unfed + opening  # the end of the value, then its closing quote
            if value is not None:
                arguments[key] = value
    call = {"name": name, "arguments": arguments}
    return call, len(engine.tokens_of(call_text([call]))), used >= budget


def auto_calls(engine, prompt_ids: list[int], tools: list[Tool], budget: int, pick) -> tuple[list[dict], int]:
    """Let the model decide: (valid calls, output tokens); no calls when it does not start with <tool_call>."""

    def not_a_call(text: str) -> bool:
        start = text.lstrip()
        return not (start.startswith(CALL_OPEN) or CALL_OPEN.startswith(start))

    with engine.lock:
        cursor = Cursor(engine, prompt_ids)
        text, used, finish = cursor.generate(budget, pick, stops=[CALL_CLOSE], give_up=not_a_call)
    if finish == "gave_up":
        return [], used
    return parse_tool_calls(text + CALL_CLOSE, tools), used


def pairing_problem(turns: list[tuple[list[str], list[str]]]) -> str | None:
    """What is wrong with the tool call ids of a conversation, or None.

    ``turns`` holds, per message, (ids of the tool calls it makes, ids of the
    calls whose results it carries). As in both APIs, results must answer the
    calls of the message just before, and every call must get its result.
    """
    for index, (_, results) in enumerate(turns):
        earlier = turns[index - 1][0] if index else []
        unknown = [result for result in results if result not in earlier]
        if unknown:
            return (f"tool result(s) for unknown tool call id(s) {unknown}: each result must answer a tool call "
                    "of the assistant message just before it.")
    for index, (calls, _) in enumerate(turns):
        if calls and index + 1 < len(turns):
            missing = [call for call in calls if call not in turns[index + 1][1]]
            if missing:
                return f"tool call id(s) {missing} have no result: send one for each call, in the next message."
    return None
