"""Tool use on the local server: SmolLM2's call format, parsing, both SDKs' tool protocols, errors.

The server (and the model) is shared with tests/test_llm.py when both run in one process.
"""

import anthropic
import openai
import pytest
import torch
from conftest import GREEDY

from helpers import llm, llm_server, llm_tools
from helpers.llm_tools import Tool

CALCULATOR = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression and return the number.",
    "input_schema": {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "for example 2 * (3 + 4)"}},
        "required": ["expression"],
    },
}
SEARCH = {
    "name": "search_notes",
    "description": "Search the course notes and return the best passages.",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
}
ANTHROPIC_TOOLS = [CALCULATOR, SEARCH]
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": t["name"], "description": t["description"],
                                      "parameters": t["input_schema"]}}
    for t in ANTHROPIC_TOOLS
]
TOOLS = [Tool(t["name"], t["description"], t["input_schema"]) for t in ANTHROPIC_TOOLS]
MULTIPLY = [{"role": "user", "content": "What is 37 * 48?"}]



pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- format and parsing (no model)


def test_prompt_lists_the_tools_in_smollm2_format():
    prompt = llm_tools.tools_prompt(TOOLS)
    assert '<tools>[{"name": "calculator"' in prompt and "<tool_call>[" in prompt
    messages = llm_tools.with_tools_prompt([{"role": "system", "content": "Be brief."}, *MULTIPLY], TOOLS)
    assert messages[0]["content"].startswith("Be brief.") and "<tools>" in messages[0]["content"]
    assert llm_tools.with_tools_prompt(MULTIPLY, TOOLS)[0]["role"] == "system"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('<tool_call>[{"name": "calculator", "arguments": {"expression": "1+1"}}]</tool_call>',
         [{"name": "calculator", "arguments": {"expression": "1+1"}}]),
        ('<tool_call>{"name": "calculator", "arguments": {"expression": "2"}}</tool_call>',  # one object
         [{"name": "calculator", "arguments": {"expression": "2"}}]),
        ("<tool_call>[{'name': 'search_notes', 'arguments': {'query': 'FID'}}]",  # Python quotes, no closing tag
         [{"name": "search_notes", "arguments": {"query": "FID"}}]),
        ('<tool_call>[{"name": "calculator", "parameters": "{\\"expression\\": \\"3\\"}"}]</tool_call>',
         [{"name": "calculator", "arguments": {"expression": "3"}}]),  # "parameters", arguments as a string
        ('<tool_call>[{"name": "func_name1", "arguments": {"argument1": "value1"}}]</tool_call>', []),  # unknown
        ('<tool_call>[{"name": "calculator", "arguments": [1, 2]}]</tool_call>', []),  # arguments not a dict
        ("<tool_call>[]</tool_call>", []),
        ("<tool_call>not json at all</tool_call>", []),
        ("The answer is 42.", []),
        ('Sure. <tool_call>[{"name": "calculator", "arguments": {"expression": "4"}}, ] trailing</tool_call>',
         [{"name": "calculator", "arguments": {"expression": "4"}}]),
    ],
)
def test_parse_tool_calls_is_robust(text, expected):
    assert llm_tools.parse_tool_calls(text, TOOLS) == expected


def test_pairing_problems():
    assert llm_tools.pairing_problem([([], []), (["a", "b"], []), ([], ["a", "b"])]) is None
    assert "unknown tool call id" in llm_tools.pairing_problem([([], ["x"])])
    assert "have no result" in llm_tools.pairing_problem([(["a", "b"], []), ([], ["a"])])


def test_tool_declarations_are_checked():
    assert llm_tools.check_tool("calculator", CALCULATOR["input_schema"]) is None
    assert "must match" in llm_tools.check_tool("two words", {"type": "object"})
    assert "type 'object'" in llm_tools.check_tool("f", {"type": "string"})


# ----------------------------------------------------------------------------- both SDKs against the model


def test_anthropic_required_call_then_result(claude):
    reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=40, messages=MULTIPLY,
                                   tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"})
    assert reply.stop_reason == "tool_use" and [block.type for block in reply.content] == ["tool_use"]
    call = reply.content[0]
    assert call.name == "calculator" and call.input == {"expression": "37 * 48"}
    assert call.id.startswith("toolu_") and reply.usage.output_tokens > 5
    history = MULTIPLY + [
        {"role": "assistant", "content": reply.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "1776"}]},
    ]
    final = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=30, messages=history, tools=ANTHROPIC_TOOLS)
    assert final.stop_reason == "end_turn" and "1776" in llm.reply_text(final)


def test_openai_required_call_then_result(gpt):
    reply = gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=40, messages=MULTIPLY,
                                        tools=OPENAI_TOOLS, tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "calculator" and call.id.startswith("call_")
    assert call.function.arguments == '{"expression": "37 * 48"}'
    history = MULTIPLY + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "1776"},
    ]
    final = gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=30, messages=history, tools=OPENAI_TOOLS)
    assert final.choices[0].finish_reason == "stop" and "1776" in final.choices[0].message.content


def test_a_named_tool_is_the_one_called(claude, gpt):
    question = [{"role": "user", "content": "Find what the notes say about FID."}]
    reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=30, messages=question, tools=ANTHROPIC_TOOLS,
                                   tool_choice={"type": "tool", "name": "search_notes"})
    assert reply.content[0].name == "search_notes"
    assert set(reply.content[0].input) == {"query"} and isinstance(reply.content[0].input["query"], str)
    named = {"type": "function", "function": {"name": "calculator"}}
    reply = gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=30, messages=MULTIPLY,
                                        tools=OPENAI_TOOLS, tool_choice=named)
    assert reply.choices[0].message.tool_calls[0].function.name == "calculator"


def test_auto_choice_falls_back_to_a_plain_answer(claude, gpt):
    """SmolLM2-135M does not start a call here: the answer is text, as without tools."""
    question = [{"role": "user", "content": "What is the capital of France?"}]
    reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=12, messages=question, tools=ANTHROPIC_TOOLS)
    assert reply.stop_reason in ("end_turn", "max_tokens") and "Paris" in llm.reply_text(reply)
    reply = gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=12, messages=question,
                                        tools=OPENAI_TOOLS, tool_choice="none")
    assert reply.choices[0].message.tool_calls is None and "Paris" in reply.choices[0].message.content


def test_auto_choice_returns_a_call_the_model_writes(claude, gpt, monkeypatch):
    """When the model writes a valid <tool_call> on its own, both SDKs receive it as a tool call."""
    from helpers.llm_server import generation

    written = '<tool_call>[{"name": "calculator", "arguments": {"expression": "2 + 2"}}]'
    monkeypatch.setattr(generation.Job, "_write",
                        lambda self, *args, **kwargs: generation.Written(written, "stop_sequence", 20))
    reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=40, messages=MULTIPLY, tools=ANTHROPIC_TOOLS)
    assert reply.stop_reason == "tool_use" and reply.content[0].input == {"expression": "2 + 2"}
    reply = gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=40, messages=MULTIPLY, tools=OPENAI_TOOLS)
    assert reply.choices[0].finish_reason == "tool_calls"


def test_the_tools_prompt_is_cached_across_requests(claude):
    """The system message listing the tools is computed once; a cached start gives the same call."""
    engine = llm_server.get_server().engine
    engine.prefix_cache.entries.clear()

    def call():
        reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=40, messages=MULTIPLY,
                                       tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"})
        return reply.content[0].name, reply.content[0].input

    cold = call()
    reused = engine.prefix_cache.reused_tokens
    assert call() == cold
    assert engine.prefix_cache.reused_tokens - reused > 200  # the tools prompt was not computed again


def test_schema_types_shape_the_arguments(claude):
    tool = {"name": "set_alarm", "description": "Set an alarm.", "input_schema": {
        "type": "object",
        "properties": {"hour": {"type": "integer"}, "loud": {"type": "boolean"},
                       "day": {"type": "string", "enum": ["monday", "tuesday"]}},
        "required": ["hour", "loud", "day"]}}
    question = [{"role": "user", "content": "Wake me at 7 on Tuesday, loudly."}]
    reply = claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=40, messages=question, tools=[tool],
                                   tool_choice={"type": "any"})
    arguments = reply.content[0].input
    assert set(arguments) == {"hour", "loud", "day"}
    assert isinstance(arguments["hour"], int) and isinstance(arguments["loud"], bool)
    assert arguments["day"] in ("monday", "tuesday")


# ----------------------------------------------------------------------------- errors


def anthropic_call_and_result(result_id="toolu_1"):
    return MULTIPLY + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "calculator",
                                           "input": {"expression": "37 * 48"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": result_id, "content": "1776"}]},
    ]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"stream": True}, "does not stream tool calls"),
        ({"tool_choice": {"type": "tool", "name": "nope"}}, "no tool named 'nope'"),
        ({"tools": [{"name": "two words", "input_schema": {"type": "object"}}]}, "must match"),
        ({"tools": [CALCULATOR, CALCULATOR]}, "unique"),
        ({"tools": None, "tool_choice": {"type": "any"}}, "only allowed when tools"),
        ({"messages": anthropic_call_and_result("toolu_other")}, "unknown tool call id"),
        ({"messages": anthropic_call_and_result()[:2] + [{"role": "user", "content": "go on"}]}, "no result"),
    ],
)
def test_anthropic_tool_errors(claude, changes, words):
    body = {"model": llm.LOCAL_MODEL, "max_tokens": 5, "messages": MULTIPLY, "tools": ANTHROPIC_TOOLS, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(anthropic.BadRequestError) as raised:
        claude.post("/v1/messages", cast_to=anthropic.types.Message, body=body)
    assert words in raised.value.body["error"]["message"]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"stream": True}, "does not stream tool calls"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "no tool named 'nope'"),
        ({"tools": None, "tool_choice": "required"}, "only allowed when tools"),
        ({"messages": MULTIPLY + [{"role": "tool", "tool_call_id": "call_1", "content": "1776"}]},
         "unknown tool call id"),
        ({"messages": MULTIPLY + [{"role": "tool", "content": "1776"}]}, "tool_call_id: Field required"),
    ],
)
def test_openai_tool_errors(gpt, changes, words):
    body = {"model": llm.LOCAL_MODEL, "max_tokens": 5, "messages": MULTIPLY, "tools": OPENAI_TOOLS, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(openai.BadRequestError) as raised:
        gpt.post("/chat/completions", cast_to=openai.types.chat.ChatCompletion, body=body)
    assert words in raised.value.message


# ----------------------------------------------------------------------------- required calls: grammar, batching


def test_call_schema_fixes_the_name_and_the_keys():
    schema = llm_tools.call_schema(TOOLS, name="calculator")
    (call,) = schema["items"]["anyOf"]
    assert call["properties"]["name"] == {"const": "calculator"}
    assert call["properties"]["arguments"]["required"] == ["expression"]
    assert len(llm_tools.call_schema(TOOLS)["items"]["anyOf"]) == 2  # no name: the model chooses


def test_a_cut_call_keeps_its_tool_and_the_arguments_complete_so_far():
    text = '[{"name": "search_notes", "arguments": {"query": "FID", "k": 3, "note": "unfini'
    assert llm_tools.cut_call(text, TOOLS, None) == {"name": "search_notes", "arguments": {"query": "FID", "k": 3}}
    assert llm_tools.cut_call('[{"', TOOLS, "calculator") == {"name": "calculator", "arguments": {}}


def test_concurrent_required_calls_share_the_batch(claude):
    from concurrent.futures import ThreadPoolExecutor

    engine = llm_server.get_server().engine
    questions = [[{"role": "user", "content": f"What is {a} * {a + 1}?"}] for a in range(2, 6)]

    def call(messages):
        return claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=40, messages=messages,
                                      tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"})

    alone = [call(messages).content[0].input for messages in questions]
    engine.batcher.largest_batch = 0
    with ThreadPoolExecutor(4) as pool:
        together = [reply.content[0].input for reply in pool.map(call, questions)]
    assert engine.batcher.largest_batch >= 2  # the calls were decoded together, not one after another
    if engine.model.dtype == torch.float32:
        assert together == alone  # greedy: the same calls, batched or not
    else:  # in bfloat16 a near-tie may go the other way in a batch (LocalModel's docstring): each is still a call
        assert all(set(call) <= {"expression", "query"} and call for call in together)
