"""helpers.llm: both SDKs against the local SmolLM2 server, errors, concurrency, images, real-client set-up.

One server (and one model load) is shared by the whole module; answers are kept short.
"""

import asyncio
import base64
import io
import threading
import time

import anthropic
import openai
import pytest
from conftest import GREEDY
from PIL import Image

from helpers import llm
from helpers import llm_server, models

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def png_base64(size=(8, 6), color="red") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def ask_claude(client, content, max_tokens=20, **kwargs):
    messages = [{"role": "user", "content": content}]
    kwargs.setdefault("extra_body", {"temperature": 0})  # greedy: the answers are asserted
    return client.messages.create(model=llm.LOCAL_MODEL, max_tokens=max_tokens, messages=messages, **kwargs)


def ask_gpt(client, content, max_tokens=20, **kwargs):
    messages = [{"role": "user", "content": content}]
    kwargs.setdefault("temperature", 0)  # greedy: the answers are asserted
    return client.chat.completions.create(
        model=llm.LOCAL_MODEL, max_tokens=max_tokens, messages=messages, **kwargs
    )


# ----------------------------------------------------------------------------- plain and streaming


def test_anthropic_plain(claude):
    assert llm.is_local(claude) and llm.default_model(claude) == llm.LOCAL_MODEL
    reply = claude.messages.create(model=llm.default_model(claude), extra_body=GREEDY, max_tokens=20, messages=QUESTION)
    assert "Paris" in reply.content[0].text and llm.reply_text(reply) == reply.content[0].text
    assert reply.stop_reason == "end_turn" and reply.model == llm.LOCAL_MODEL
    assert reply.usage.input_tokens > 10 and 0 < reply.usage.output_tokens <= 20


def test_openai_plain(gpt):
    model = llm.default_model(gpt)
    reply = gpt.chat.completions.create(model=model, temperature=0, max_completion_tokens=20, messages=QUESTION)
    answer = reply.choices[0].message.content
    assert "Paris" in answer and llm.reply_text(reply) == answer
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage.prompt_tokens > 10 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_anthropic_streaming(claude):
    with claude.messages.stream(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=20, messages=QUESTION) as stream:
        types = [event.type for event in stream if event.type != "text"]  # "text": the SDK's own extra events
        final = stream.get_final_message()
    assert types[:2] == ["message_start", "content_block_start"] and "content_block_delta" in types
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "Paris" in final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_openai_streaming(gpt):
    stream = gpt.chat.completions.create(
        model=llm.LOCAL_MODEL, temperature=0, max_tokens=20, messages=QUESTION, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices


def test_stop_sequences(claude, gpt):
    stopped = ask_claude(claude, "What is the capital of France?", stop_sequences=["Paris"], extra_body=GREEDY)
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "Paris"
    assert "Paris" not in stopped.content[0].text and stopped.content[0].text.startswith("The capital")
    stopped = ask_gpt(gpt, "What is the capital of France?", stop=["Paris"], temperature=0, stream=True)
    chunks = list(stopped)
    assert "Paris" not in "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_temperature_and_seed(gpt):
    seeded = [ask_gpt(gpt, "Name a colour.", max_tokens=2, temperature=1.5, seed=7, n=2) for _ in range(2)]
    assert [c.message.content for c in seeded[0].choices] == [c.message.content for c in seeded[1].choices]
    assert seeded[0].choices[0].message.content != seeded[0].choices[1].message.content  # n=2: two samples
    assert 0 < seeded[0].usage.completion_tokens <= 4


def test_system_prefill_and_conversion(claude):
    request = llm_server.AnthropicRequest.model_validate_json(
        '{"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "Be brief."}],'
        ' "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello "}]}'
    )
    chat = llm_server.anthropic_chat(request)
    assert chat.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert chat.prefill == "Hello"
    messages = [*QUESTION, {"role": "assistant", "content": "The capital of France is"}]  # a prefill
    reply = claude.messages.create(model=llm.LOCAL_MODEL, max_tokens=5, messages=messages, extra_body=GREEDY)
    assert "Paris" in reply.content[0].text


def test_models_list_and_token_count(claude, gpt):
    assert [m.id for m in claude.models.list()] == [llm.LOCAL_MODEL]
    assert [m.id for m in gpt.models.list()] == [llm.LOCAL_MODEL]
    counted = claude.messages.count_tokens(model=llm.LOCAL_MODEL, messages=QUESTION).input_tokens
    assert counted == ask_claude(claude, "What is the capital of France?", max_tokens=1).usage.input_tokens


def test_async_clients(server):
    async def ask_both():
        claude = llm.anthropic_client(local=True, asynchronous=True)
        gpt = llm.openai_client(local=True, asynchronous=True)
        assert llm.default_model(claude) == llm.default_model(gpt) == llm.LOCAL_MODEL
        return await asyncio.gather(
            claude.messages.create(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=2, messages=QUESTION),
            gpt.chat.completions.create(model=llm.LOCAL_MODEL, temperature=0, max_tokens=2, messages=QUESTION),
        )

    claude_reply, gpt_reply = asyncio.run(ask_both())  # max_tokens=2 cuts both answers short
    assert claude_reply.content[0].text == gpt_reply.choices[0].message.content == "The capital"
    assert claude_reply.stop_reason == "max_tokens" and claude_reply.usage.output_tokens == 2
    assert gpt_reply.choices[0].finish_reason == "length" and gpt_reply.usage.completion_tokens == 2


# ----------------------------------------------------------------------------- bad requests

LONG = [{"role": "user", "content": "word " * 9000}]  # more tokens than SmolLM2's 8192-token context
MISSING = object()  # leave the field out


def changed(body: dict, **changes) -> dict:
    body = {**body, **changes}
    return {key: value for key, value in body.items() if value is not MISSING}


ANTHROPIC_BODY = {"model": llm.LOCAL_MODEL, "max_tokens": 5, "messages": QUESTION}
OPENAI_BODY = {"model": llm.LOCAL_MODEL, "messages": QUESTION}


@pytest.mark.parametrize(
    "changes, error, words",
    [
        ({"max_tokens": MISSING}, anthropic.BadRequestError, "max_tokens: Field required"),
        ({"messages": MISSING}, anthropic.BadRequestError, "messages: Field required"),
        ({"model": MISSING}, anthropic.BadRequestError, "model: Field required"),
        ({"max_tokens": "ten"}, anthropic.BadRequestError, "max_tokens: Input should be a valid integer"),
        ({"messages": "hi"}, anthropic.BadRequestError, "valid array"),
        ({"messages": []}, anthropic.BadRequestError, "at least 1"),
        ({"messages": [{"role": "system", "content": "x"}]}, anthropic.BadRequestError, "role"),
        ({"temperature": 3}, anthropic.BadRequestError, "temperature"),
        ({"tools": [{"name": "f"}]}, anthropic.BadRequestError, "tools"),
        ({"messages": LONG}, anthropic.BadRequestError, "prompt is too long"),
        ({"model": "claude-nonexistent"}, anthropic.NotFoundError, "only serves"),
    ],
)
def test_anthropic_bad_requests(claude, changes, error, words):
    with pytest.raises(error) as raised:
        claude.post("/v1/messages", cast_to=anthropic.types.Message, body=changed(ANTHROPIC_BODY, **changes))
    body = raised.value.body  # the Anthropic error shape: {"type": "error", "error": {"type", "message"}}
    assert body["type"] == "error" and words in body["error"]["message"]
    expected = "not_found_error" if error is anthropic.NotFoundError else "invalid_request_error"
    assert body["error"]["type"] == expected


@pytest.mark.parametrize(
    "changes, error, words",
    [
        ({"messages": MISSING}, openai.BadRequestError, "messages: Field required"),
        ({"model": MISSING}, openai.BadRequestError, "model: Field required"),
        ({"messages": "hi"}, openai.BadRequestError, "valid array"),
        ({"max_tokens": 2.5}, openai.BadRequestError, "max_tokens: Input should be a valid integer"),
        ({"n": 0}, openai.BadRequestError, "n: Input should be greater than or equal to 1"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, openai.BadRequestError, "audio"),
        ({"messages": LONG}, openai.BadRequestError, "prompt is too long"),
        ({"model": "gpt-nonexistent"}, openai.NotFoundError, "only serves"),
    ],
)
def test_openai_bad_requests(gpt, changes, error, words):
    with pytest.raises(error) as raised:
        body = changed(OPENAI_BODY, **changes)
        gpt.post("/chat/completions", cast_to=openai.types.chat.ChatCompletion, body=body)
    assert words in raised.value.message and raised.value.type == "invalid_request_error"
    if error is openai.NotFoundError:
        assert raised.value.code == "model_not_found" and raised.value.param == "model"
    if "too long" in words:
        assert raised.value.code == "context_length_exceeded"


def test_bad_streaming_request_raises_before_streaming(claude, gpt):
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="claude-nonexistent", max_tokens=5, messages=QUESTION, stream=True)
    with pytest.raises(openai.BadRequestError):
        gpt.chat.completions.create(model=llm.LOCAL_MODEL, messages=QUESTION, stream=True, temperature=5)


# ----------------------------------------------------------------------------- concurrency and disconnects


def test_concurrent_requests_get_their_own_answers(claude, gpt):
    capitals = {"France": "Paris", "Japan": "Tokyo", "Germany": "Berlin"}
    answers: dict[str, str] = {}

    def ask(country: str) -> None:
        question = f"What is the capital of {country}?"
        if country != "Japan":
            answers[country] = ask_claude(claude, question, max_tokens=10).content[0].text
        else:
            answers[country] = ask_gpt(gpt, question, max_tokens=10).choices[0].message.content

    threads = [threading.Thread(target=ask, args=(country,)) for country in capitals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(capitals[country] in answers[country] for country in capitals), answers
    assert answers["France"] == "The capital of France is Paris."  # the same words as when asked alone


def test_server_survives_a_client_leaving_mid_stream(server, claude, gpt):
    story = "Write a very long story about a dragon who learns to count to one thousand."
    stream = ask_gpt(gpt, story, max_tokens=400, temperature=0, stream=True)
    for _ in zip(range(3), stream):
        pass
    stream.close()  # hang up after three chunks
    messages = [{"role": "user", "content": story}]
    with claude.messages.stream(model=llm.LOCAL_MODEL, extra_body=GREEDY, max_tokens=400, messages=messages) as events:
        for _ in zip(range(3), events.text_stream):
            pass  # leaving the block closes the connection
    started = time.monotonic()
    while server.engine.batcher.rows and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert not server.engine.batcher.rows, "the generation went on after the client left"
    assert server.thread.is_alive()
    assert llm.reply_text(ask_gpt(gpt, "What is the capital of France?", max_tokens=2)) == "The capital"


# ----------------------------------------------------------------------------- images


def anthropic_image(size=(8, 6), color="red") -> dict:
    source = {"type": "base64", "media_type": "image/png", "data": png_base64(size, color)}
    return {"type": "image", "source": source}


def openai_image(size=(8, 6), color="red") -> dict:
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png_base64(size, color)}}


def text(words: str) -> dict:
    return {"type": "text", "text": words}


def test_images_get_an_honest_reply(claude, gpt):
    reply = ask_claude(claude, [anthropic_image(), text("What is in this picture?")], max_tokens=100)
    assert reply.content[0].text == llm_server.CANNOT_SEE and reply.stop_reason == "end_turn"
    reply = ask_gpt(gpt, [text("Describe it."), openai_image()], max_tokens=100)
    assert "can't see images" in reply.choices[0].message.content
    web = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert ask_claude(claude, [web], max_tokens=5).stop_reason == "max_tokens"  # still honest, cut at 5 tokens


def test_vision_handler_answers_images(claude, gpt):
    calls = []

    def describe(images, prompt):
        calls.append(len(images))
        width, height = images[0].size
        return f"A {width}x{height} {images[0].getpixel((0, 0))} picture; you asked: {prompt}"

    llm.register_vision_handler(describe)
    try:
        reply = ask_claude(claude, [anthropic_image((8, 6)), text("What colour?")], max_tokens=100)
        assert reply.content[0].text == "A 8x6 (255, 0, 0) picture; you asked: What colour?"
        stream = ask_gpt(gpt, [text("Hi"), openai_image((4, 4), "blue")], max_tokens=100, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream)
        assert streamed == "A 4x4 (0, 0, 255) picture; you asked: Hi" and calls == [1, 1]
        assert llm.reply_text(ask_gpt(gpt, "What is the capital of France?", max_tokens=2)) == "The capital"
        with pytest.raises(anthropic.BadRequestError, match="base64"):  # offline: no web images
            web = {"type": "url", "url": "https://example.com/a.png"}
            ask_claude(claude, [{"type": "image", "source": web}])
        with pytest.raises(openai.BadRequestError, match="Could not process image"):
            not_an_image = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
            ask_gpt(gpt, [{"type": "image_url", "image_url": {"url": not_an_image}}])
    finally:
        llm.register_vision_handler(None)
    with pytest.raises(TypeError):
        llm.register_vision_handler("not a function")


# ----------------------------------------------------------------------------- real clients (no network)


def test_real_clients_with_a_key(monkeypatch, capsys):
    fake = "sk-test-FAKE-KEY-0123456789"
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", fake)
    monkeypatch.setenv("OPENAI_API_KEY", fake)
    claude, gpt = llm.anthropic_client(), llm.openai_client()
    assert isinstance(claude, anthropic.Anthropic)
    assert str(claude.base_url).startswith("https://api.anthropic.com")
    assert isinstance(gpt, openai.OpenAI) and str(gpt.base_url).startswith("https://api.openai.com/v1")
    assert not llm.is_local(claude) and llm.default_model(claude) == llm.ANTHROPIC_MODEL
    assert llm.default_model(gpt) == llm.OPENAI_MODEL
    printed = capsys.readouterr()
    assert fake not in printed.out + printed.err and "Anthropic API" in printed.out
    assert llm.is_local(llm.anthropic_client(local=True))  # local=True wins over a key


def test_no_key_and_local_false_says_what_to_do(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(llm, "_interactive", lambda: False)  # never prompt, even under pytest -s
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY"):
        llm.openai_client(local=False)


def test_a_students_own_localhost_server_is_not_the_course_server(monkeypatch):
    """A key and a base URL on localhost (your own vLLM or Ollama) is a real API to the course's code."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-FAKE-KEY-0123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    own = llm.openai_client()
    assert str(own.base_url).startswith("http://localhost:11434")
    assert not llm.is_local(own) and llm.default_model(own) == llm.OPENAI_MODEL
    assert llm.is_local(llm.openai_client(local=True))


def test_the_stand_in_answers_to_the_real_model_ids_and_caps_answers(monkeypatch):
    monkeypatch.setattr(llm_server.schemas, "SERVED_MODELS", {llm.LOCAL_MODEL, llm.ANTHROPIC_MODEL})
    monkeypatch.setattr(llm_server.schemas, "max_tokens_cap", 5)
    claude = llm.anthropic_client(local=True)
    reply = claude.messages.create(model=llm.ANTHROPIC_MODEL, max_tokens=400,
                                   messages=[{"role": "user", "content": "Count from one to one hundred."}])
    assert reply.usage.output_tokens == 5 and reply.stop_reason == "max_tokens"


def test_the_keyed_path_stand_in(monkeypatch):
    """GENAI_API_STAND_IN=1 sends the real-API clients to the stand-in: not local, and every route a chapter
    with a key calls answers in the SDK's shape."""
    import pydantic

    from helpers import guardrails

    served = set(llm_server.schemas.SERVED_MODELS)
    monkeypatch.setattr(llm_server.schemas, "SERVED_MODELS", served)  # restored after the test
    monkeypatch.setattr(llm_server.schemas, "max_tokens_cap", None)
    monkeypatch.setattr(llm_server.server, "_stand_in", None)
    monkeypatch.setenv("GENAI_API_STAND_IN", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "dummy-key-for-the-stand-in")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "dummy-key-for-the-stand-in")
    gpt, claude = llm.openai_client(), llm.anthropic_client()
    assert not llm.is_local(gpt) and llm.default_model(gpt) == llm.OPENAI_MODEL

    class Sentiment(pydantic.BaseModel):
        label: str
        score: float

    parsed = gpt.chat.completions.parse(model=llm.OPENAI_MODEL, response_format=Sentiment,
                                        messages=[{"role": "user", "content": "Great!"}])
    assert isinstance(parsed.choices[0].message.parsed, Sentiment)
    anthropic_parsed = claude.messages.parse(model=llm.ANTHROPIC_MODEL, max_tokens=100, output_format=Sentiment,
                                             messages=[{"role": "user", "content": "Great!"}])
    assert isinstance(anthropic_parsed.parsed_output, Sentiment)
    moderate = guardrails.openai_moderation(llm.openai_client(local=False))
    assert moderate("We ship to Ireland in 5 to 7 days.") == []
    uploaded = gpt.files.create(file=("train.jsonl", b'{"messages": []}\n'), purpose="fine-tune")
    job = gpt.fine_tuning.jobs.create(model=llm.OPENAI_MODEL, training_file=uploaded.id)
    assert job.status == "succeeded" and gpt.fine_tuning.jobs.retrieve(job.id).fine_tuned_model == job.fine_tuned_model
    reply = gpt.chat.completions.create(model=job.fine_tuned_model, max_completion_tokens=5,
                                        messages=[{"role": "user", "content": "Hi"}])
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    # the reasoning models' controls are accepted (the local server refuses them), answers are greedy
    thought = gpt.chat.completions.create(model=llm.OPENAI_MODEL, max_completion_tokens=20, reasoning_effort="low",
                                          messages=[{"role": "user", "content": "Name three fruits."}])
    again = gpt.chat.completions.create(model=llm.OPENAI_MODEL, max_completion_tokens=20, reasoning_effort="low",
                                        messages=[{"role": "user", "content": "Name three fruits."}])
    assert thought.choices[0].message.content == again.choices[0].message.content
    assert thought.usage.completion_tokens_details.reasoning_tokens == 0
    effort = claude.messages.create(model=llm.ANTHROPIC_MODEL, max_tokens=5, output_config={"effort": "low"},
                                    messages=[{"role": "user", "content": "Hi"}])
    assert effort.usage.output_tokens == 5
    # the images API with the real model's id: the scene model draws, scaled up to the size asked for
    drawn = gpt.images.generate(model=models.OPENAI_IMAGE_MODEL, prompt="a red circle in the centre", size="1024x1024")
    assert Image.open(io.BytesIO(base64.b64decode(drawn.data[0].b64_json))).size == (1024, 1024)


def test_smollm2_request_is_greedy_without_reasoning_controls():
    from helpers.api_stand_in import as_smollm2_request

    body = {"model": "m", "reasoning_effort": "high", "output_config": {"effort": "low", "format": {"type": "x"}}}
    assert as_smollm2_request(body) == {"model": "m", "temperature": 0, "output_config": {"format": {"type": "x"}}}
    assert as_smollm2_request({"thinking": {}, "temperature": 0.7, "output_config": {"effort": "low"}}) == \
        {"temperature": 0.7}


def test_schema_instance_fits_the_schema():
    from helpers.api_stand_in import schema_instance

    schema = {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}, "items": {"type": "array", "minItems": 1,
              "items": {"$ref": "#/$defs/Item"}}}, "$defs": {"Item": {"type": "object", "properties": {
              "n": {"type": "integer"}, "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}
    assert schema_instance(schema) == {"kind": "a", "items": [{"n": 0, "note": ""}]}
