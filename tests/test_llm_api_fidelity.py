"""helpers.llm_server behaves as the real APIs where it differed: unknown fields, defaults, limits, failures.

Every check goes through the official SDKs, as a notebook would.
"""

import base64
import io
import time

import anthropic
import openai
import pytest
from conftest import GREEDY
from PIL import Image

from helpers import llm
from helpers.llm_server import engine as engine_module
from helpers.llm_server import generation, server as server_module

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
TOOL = {"name": "get_weather", "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                         "required": ["city", "unit"]}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("field", [{"top_logprobs": 2}, {"logprobs": True},
                                   {"logit_bias": {"15": 5}}, {"reasoning_effort": "low"}])
def test_openai_unsupported_fields_are_refused(gpt, field):
    with pytest.raises(openai.BadRequestError, match="does not support this field") as caught:
        gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=QUESTION, extra_body=field)
    assert caught.value.body["param"] == next(iter(field))


def test_anthropic_unsupported_fields_are_refused(claude):
    with pytest.raises(anthropic.BadRequestError, match="thinking: the local server"):
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=20, messages=QUESTION,
                               thinking={"type": "enabled", "budget_tokens": 1024})
    with pytest.raises(anthropic.BadRequestError, match="does not support this field"):
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=QUESTION, extra_body={"colour": "red"})


def test_fields_the_real_apis_accept_and_this_one_can_ignore_pass(claude, gpt):
    cached = [{"role": "user", "content": [{"type": "text", "text": "What is the capital of France?",
                                            "cache_control": {"type": "ephemeral"}}]}]
    reply = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=cached, metadata={"user_id": "u1"})
    assert reply.usage.output_tokens == 2
    reply = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=QUESTION, user="u1", store=False)
    answer = reply.choices[0].message
    again = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2,
                                        messages=[*QUESTION, answer, {"role": "user", "content": "And Spain?"}])
    assert again.choices[0].finish_reason == "length"  # the SDK's own message object, sent back as it is


def test_anthropic_max_tokens_must_be_at_least_one(claude):
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=0, messages=QUESTION)


def test_temperature_defaults_to_one_as_the_real_apis(gpt):
    def answers(**options) -> set[str]:
        return {gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=12, messages=QUESTION,
                                            **options).choices[0].message.content for _ in range(4)}

    assert len(answers()) > 1  # sampled: four tries do not all agree
    assert len(answers(**llm.greedy_if_local(gpt))) == 1
    assert engine_module.DEFAULT_TEMPERATURE == 1.0


def test_greedy_if_local_fits_each_sdk(claude, gpt):
    assert llm.greedy_if_local(claude) == {"extra_body": {"temperature": 0}}
    assert llm.greedy_if_local(gpt) == {"temperature": 0}
    real = openai.OpenAI(api_key="not-a-key", base_url="http://127.0.0.1:9/v1")
    assert llm.greedy_if_local(real) == {}  # real models refuse a temperature (helpers.models)


def test_a_request_body_over_the_limit_gets_413(claude, gpt, monkeypatch):
    monkeypatch.setattr(server_module, "MAX_BODY_BYTES", 2_000)
    long = [{"role": "user", "content": "word " * 1_000}]
    with pytest.raises(anthropic.APIStatusError, match="larger than") as caught:
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=long)
    assert caught.value.status_code == 413 and caught.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.APIStatusError, match="larger than") as caught:
        gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=long)
    assert caught.value.status_code == 413


def png_base64(size, mode="1") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_decompression_bomb_is_refused_before_decoding(claude):
    bomb = png_base64((9_000, 9_000))  # ~10 kB of PNG, 81 million pixels once decoded
    assert len(bomb) < 100_000
    llm.register_vision_handler(lambda images, prompt: "seen")
    try:
        content = [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": bomb}},
                   {"type": "text", "text": "What is this?"}]
        with pytest.raises(anthropic.BadRequestError, match="9000x9000"):
            claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, messages=[{"role": "user", "content": content}])
    finally:
        llm.register_vision_handler(None)


def test_an_unexpected_failure_is_an_api_shaped_500(claude, gpt, monkeypatch):
    def broken(self, engine, chat):
        raise RuntimeError("a bug in the server")

    monkeypatch.setattr(generation.Job, "__init__", broken)
    with pytest.raises(anthropic.InternalServerError, match="a bug in the server") as caught:
        claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=QUESTION)
    assert caught.value.body["error"]["type"] == "api_error"
    with pytest.raises(openai.InternalServerError, match="a bug in the server"):
        gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=QUESTION)


def test_a_non_streaming_request_stops_when_its_client_leaves(server):
    story = [{"role": "user", "content": "Write a very long story about a dragon who learns to count."}]
    quick = llm.openai_client(local=True, timeout=1.5)
    with pytest.raises(openai.APITimeoutError):
        quick.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=1_000, messages=story)
    started = time.monotonic()
    while server.engine.batcher.rows and time.monotonic() - started < 5:
        time.sleep(0.05)
    assert not server.engine.batcher.rows, "the generation went on after its client left"


def test_count_tokens_equals_the_billed_input_with_tools(claude):
    messages = [{"role": "user", "content": "Is it raining in Oslo? Answer in Celsius."}]
    counted = claude.messages.count_tokens(model=llm.LOCAL_MODEL, messages=messages, tools=[TOOL]).input_tokens
    plain = claude.messages.count_tokens(model=llm.LOCAL_MODEL, messages=messages).input_tokens
    for choice in ({"type": "any"}, {"type": "auto"}):
        reply = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=40, messages=messages, tools=[TOOL],
                                       tool_choice=choice, extra_body=GREEDY)
        assert reply.usage.input_tokens == counted > plain  # the tools' description is in the prompt, and billed


def test_a_required_call_cut_by_max_tokens_ends_as_max_tokens(claude, gpt):
    messages = [{"role": "user", "content": "What is the weather in Oslo, in Celsius?"}]
    reply = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=messages, tools=[TOOL],
                                   tool_choice={"type": "any"}, extra_body=GREEDY)
    assert reply.stop_reason == "max_tokens"
    whole = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=60, messages=messages, tools=[TOOL],
                                   tool_choice={"type": "any"}, extra_body=GREEDY)
    assert whole.stop_reason == "tool_use" and set(whole.content[0].input) == {"city", "unit"}
    tool = {"type": "function", "function": {"name": TOOL["name"], "description": TOOL["description"],
                                             "parameters": TOOL["input_schema"]}}
    cut = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=2, messages=messages, tools=[tool],
                                      tool_choice="required", temperature=0)
    assert cut.choices[0].finish_reason == "length"


def test_control_tags_end_the_text_and_never_reach_it(server):
    from helpers.llm_server.engine import Generation, Sampling

    engine, result = server.engine, Generation()
    reply = "The weather is fine.</tool_response>\n<tool_call>[{\"name\": \"x\"}]"
    text = "".join(engine.stream(engine.tokens_of("Hi"), Sampling(max_tokens=50), result,
                                 generation.threading.Event(), reply=reply))
    assert text == "The weather is fine." and result.finish == "stop" and result.stop_sequence is None



PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
ADA = [{"role": "user", "content": "Ada Lovelace died at 36. Describe her as JSON."}]


def test_openai_structured_outputs_follow_the_schema(gpt):
    import json

    from pydantic import BaseModel

    reply = gpt.chat.completions.create(
        model=llm.LOCAL_MODEL, max_tokens=40, temperature=0, messages=ADA,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    person = json.loads(reply.choices[0].message.content)
    assert set(person) == {"name", "age"} and isinstance(person["age"], int)
    assert list(person) == ["name", "age"]  # in the schema's order

    class Person(BaseModel):
        name: str
        age: int

    parsed = gpt.chat.completions.parse(model=llm.LOCAL_MODEL, max_tokens=40, temperature=0, messages=ADA,
                                        response_format=Person).choices[0].message.parsed
    assert isinstance(parsed, Person)
    free = gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=40, temperature=0, messages=ADA)
    with pytest.raises(ValueError):  # without the schema, the small model's answer is not JSON
        json.loads(free.choices[0].message.content)


def test_anthropic_structured_outputs_follow_the_schema(claude):
    import json

    reply = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=40, messages=ADA, extra_body=GREEDY,
                                   output_config={"format": {"type": "json_schema", "schema": PERSON}})
    assert set(json.loads(reply.content[0].text)) == {"name", "age"} and reply.stop_reason == "end_turn"


def test_a_schema_that_cannot_be_used_is_a_400(gpt):
    broken = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "no-such-type"}}}
    with pytest.raises(openai.BadRequestError, match="JSON schema"):
        gpt.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=5, messages=ADA, response_format=broken)


def test_answers_are_checked_against_the_sdks_own_types():
    import pydantic
    from anthropic.types import Message
    from openai.types.chat import ChatCompletion

    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": llm.LOCAL_MODEL, "stop_sequence": None,
               "content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn",
               "usage": {"input_tokens": 3, "output_tokens": 2}}
    assert generation.typed(Message, message) is message
    with pytest.raises(pydantic.ValidationError, match="usage"):  # a field the SDK needs, forgotten
        generation.typed(Message, {key: value for key, value in message.items() if key != "usage"})
    with pytest.raises(pydantic.ValidationError):
        generation.typed(ChatCompletion, {"id": "c", "object": "chat.completion", "created": "yesterday",
                                          "model": llm.LOCAL_MODEL, "choices": []})
