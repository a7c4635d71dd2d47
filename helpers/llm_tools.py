"""Tool use (function calling) for the local SmolLM2 server (``helpers.llm_server``).

SmolLM2-Instruct learned function calling from Argilla's Synth-APIGen data in
one format (the SmolLM2 model card's): the tools' JSON schemas inside
``<tools>...</tools>`` in the system prompt, and calls written as

    <tool_call>[{"name": "calculator", "arguments": {"expression": "37 * 48"}}]</tool_call>

This module renders requests in that format, parses the model's calls
robustly (JSON, Python-style quotes, a missing closing tag) and, when a call
is *required* (Anthropic ``tool_choice={"type": "any"|"tool"}``, OpenAI
``tool_choice="required"`` or a named function), the server writes the call
with constrained decoding (:func:`call_schema`: a JSON schema of the call, turned
into a grammar by xgrammar), so the model picks the tool among the declared ones
and writes arguments with the schema's keys and types. Tool results are shown to
the model as ``<tool_response>...</tool_response>`` user turns. The server decodes
calls in its batcher like any answer, so the system message that lists the tools
comes from its prompt-prefix cache and concurrent agents share forward passes.

Measured honestly in chapter 09: the 135M model almost never starts a call on
its own (``tool_choice`` auto); with a required call it picks the right tool
and copies sensible arguments most of the time, not always.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

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


# --------------------------------------------------------------------------- required calls


def call_schema(tools: list[Tool], name: str | None = None) -> dict:
    """The JSON schema of one required call, as SmolLM2 writes it: ``[{"name": ..., "arguments": {...}}]``.

    ``name`` fixes the tool; otherwise the model chooses among the declared ones. The
    arguments hold the keys of :meth:`Tool.keys`, each shaped by its own schema.
    """
    def one_call(tool: Tool) -> dict:
        properties = tool.parameters.get("properties") or {}
        keys = tool.keys()
        arguments = {"type": "object", "properties": {key: properties.get(key) or {} for key in keys},
                     "required": keys, "additionalProperties": False}
        return {"type": "object", "properties": {"name": {"const": tool.name}, "arguments": arguments},
                "required": ["name", "arguments"], "additionalProperties": False}

    chosen = [tool for tool in tools if name is None or tool.name == name]
    return {"type": "array", "minItems": 1, "maxItems": 1, "items": {"anyOf": [one_call(t) for t in chosen]}}


def cut_call(text: str, tools: list[Tool], name: str | None) -> dict:
    """What a required call cut by ``max_tokens`` had written: its tool and the arguments complete so far."""
    written = re.match(r'\[\{"name": "([^"]+)"', text)
    if written and written.group(1) in {tool.name for tool in tools}:
        name = written.group(1)
    arguments = {}
    for key, value in re.findall(r'"([^"]+)": ("(?:[^"\\]|\\.)*"|-?[\d.eE+-]+(?=[,}])|true|false|null)', text):
        if key != "name":
            arguments[key] = json.loads(value)
    return {"name": name or tools[0].name, "arguments": arguments}


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
