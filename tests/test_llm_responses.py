"""The local endpoint's Responses API (``POST /v1/responses``) through the official openai SDK."""

import openai
import pydantic
import pytest
from conftest import GREEDY

from helpers import llm


def test_a_response_is_the_chat_completion_it_means(gpt):
    model = llm.default_model(gpt)
    response = gpt.responses.create(model=model, instructions="Answer in one short sentence.",
                                    input="What is the capital of France?", max_output_tokens=24, **GREEDY)
    chat = gpt.chat.completions.create(model=model, max_completion_tokens=24, **GREEDY, messages=[
        {"role": "system", "content": "Answer in one short sentence."},
        {"role": "user", "content": "What is the capital of France?"}])
    assert response.status == "completed" and response.output_text == chat.choices[0].message.content
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.output_tokens == chat.usage.completion_tokens
    assert response.output[0].type == "message" and response.output[0].content[0].type == "output_text"


def test_a_list_of_messages_and_a_cut_answer(gpt):
    response = gpt.responses.create(model=llm.default_model(gpt), max_output_tokens=16, **GREEDY, input=[
        {"role": "user", "content": [{"type": "input_text", "text": "Write a long story about a dragon and a knight."}]}])
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 16


def test_the_stream_has_the_real_apis_events_in_order(gpt):
    with gpt.responses.stream(model=llm.default_model(gpt), input="Say hello.", max_output_tokens=60,
                              **GREEDY) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert set(kinds[4:-4]) == {"response.output_text.delta"} and final.output_text


def test_structured_output_with_parse(gpt):
    class City(pydantic.BaseModel):
        name: str
        country: str

    parsed = gpt.responses.parse(model=llm.default_model(gpt), input="Name a city in Italy.", text_format=City,
                                 max_output_tokens=60, **GREEDY)
    assert isinstance(parsed.output_parsed, City)


@pytest.mark.parametrize("options, message", [
    ({"previous_response_id": "resp_123"}, "previous_response_id: the local server does not support this field"),
    ({"tools": [{"type": "web_search"}]}, "tools: the local server does not support this field"),
    ({"max_output_tokens": 8}, "max_output_tokens: Input should be greater than or equal to 16"),
])
def test_bad_requests_are_400s(gpt, options, message):
    with pytest.raises(openai.BadRequestError, match=message):
        gpt.responses.create(model=llm.default_model(gpt), input="Hi", **options)


def test_another_model_is_not_found(gpt):
    with pytest.raises(openai.NotFoundError, match="only serves the model"):
        gpt.responses.create(model="gpt-nonexistent", input="Hi")
