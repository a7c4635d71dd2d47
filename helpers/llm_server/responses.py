"""OpenAI's Responses API, ``POST /v1/responses`` (plain and streamed), answered by the same chat engine.

A Responses request (``input`` as a string or a list of messages, ``instructions``, ``max_output_tokens``,
``text.format`` for structured outputs) is turned into the Chat Completions request it means, generated the
same way, and answered as ``openai.types.responses.Response`` or as its stream of typed events
(``response.created`` … ``response.output_text.delta`` … ``response.completed``), so ``openai.OpenAI`` reads
both as it reads the real API's. Tools, ``previous_response_id`` and stored conversations are not served
(400): the local server keeps no state between requests.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Annotated, Any, Literal, Union

from fastapi.responses import JSONResponse, StreamingResponse
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import Field, TypeAdapter

from helpers.llm_server.chat import openai_chat
from helpers.llm_server.engine import Generation, LocalModel
from helpers.llm_server.generation import Job, sse, typed
from helpers.llm_server.openai_routes import openai_error
from helpers.llm_server.schemas import OpenAIRequest, RequestError, Strict, parse
from helpers.local_model import LOCAL_MODEL

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


class InputText(Strict):
    type: Literal["input_text", "output_text"]
    text: str
    annotations: list | None = None  # an output_text sent back as the SDK returned it


class InputImage(Strict):
    type: Literal["input_image"]
    image_url: str  # a data: URL (the local server is offline)
    detail: Literal["low", "high", "auto"] | None = None


class InputMessage(Strict):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Annotated[Union[InputText, InputImage], Field(discriminator="type")]]
    type: Literal["message"] | None = None
    id: str | None = None
    status: str | None = None


class JsonSchemaText(Strict):
    type: Literal["json_schema"]
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


class PlainText(Strict):
    type: Literal["text", "json_object"]


class TextConfig(Strict):
    format: Annotated[Union[PlainText, JsonSchemaText], Field(discriminator="type")] | None = None
    verbosity: Literal["medium"] | None = None  # the default; SmolLM2 has no other


class ResponsesRequest(Strict):
    model: str
    input: str | list[InputMessage]
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=16)  # the real API's minimum
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stream: bool = False
    text: TextConfig | None = None
    store: bool | None = None  # accepted; nothing is stored here
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None


def chat_request(request: ResponsesRequest) -> OpenAIRequest:
    """The Chat Completions request a Responses request means."""
    messages = [{"role": "system", "content": request.instructions}] if request.instructions else []
    for message in [InputMessage(role="user", content=request.input)] if isinstance(request.input, str) \
            else request.input:
        content = message.content if isinstance(message.content, str) else [
            {"type": "text", "text": part.text} if isinstance(part, InputText)
            else {"type": "image_url", "image_url": {"url": part.image_url}} for part in message.content]
        messages.append({"role": message.role, "content": content})
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_completion_tokens": request.max_output_tokens,
                            "temperature": request.temperature, "top_p": request.top_p}
    fmt = request.text.format if request.text else None
    if isinstance(fmt, JsonSchemaText):
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema_}}
    elif fmt is not None and fmt.type == "json_object":
        body["response_format"] = {"type": "json_object"}
    return OpenAIRequest.model_validate(body)


def response_body(response_id: str, request: ResponsesRequest, text: str | None, result: Generation,
                  input_tokens: int, cached_tokens: int = 0) -> dict:
    """The Response object: in progress (``text`` None) or finished with ``text``."""
    finished = text is not None
    incomplete = finished and result.finish == "length"
    message = {"id": f"msg_{response_id[5:]}", "type": "message", "role": "assistant",
               "status": "incomplete" if incomplete else "completed",
               "content": [{"type": "output_text", "text": text, "annotations": []}]}
    body = {"id": response_id, "object": "response", "created_at": time.time(), "model": LOCAL_MODEL,
            "status": ("incomplete" if incomplete else "completed") if finished else "in_progress",
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": request.instructions, "max_output_tokens": request.max_output_tokens,
            "output": [message] if finished else [], "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "temperature": request.temperature, "top_p": request.top_p, "error": None}
    if finished:
        body["usage"] = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
                         "output_tokens": result.output_tokens, "total_tokens": input_tokens + result.output_tokens,
                         "output_tokens_details": {"reasoning_tokens": 0}}  # SmolLM2 does not reason
    return typed(Response, body)


async def openai_responses(engine: LocalModel, body: bytes):
    try:
        request = parse(ResponsesRequest, body)
        job = Job(engine, openai_chat(chat_request(request)))
    except RequestError as error:
        return openai_error(error)
    response_id = f"resp_local{uuid.uuid4().hex[:24]}"
    result = Generation()
    cached = engine.cache_book.openai_cached_tokens(job.billed_ids)  # automatic prompt caching

    if not request.stream:
        try:
            text = "".join([piece async for piece in job.run(result)])
        except Exception as error:
            return openai_error(RequestError(f"The local model failed: {error!r}", status=500))
        return JSONResponse(response_body(response_id, request, text, result, len(job.billed_ids), cached))

    async def events():
        number = itertools.count()

        def event(kind: str, **fields) -> str:
            data = {"type": kind, "sequence_number": next(number), **fields}
            STREAM_EVENT.validate_python(data)
            return sse(data, event=kind)

        started = response_body(response_id, request, None, result, 0)
        item_id = f"msg_{response_id[5:]}"
        place = {"item_id": item_id, "output_index": 0, "content_index": 0}
        yield event("response.created", response=started)
        yield event("response.in_progress", response=started)
        yield event("response.output_item.added", output_index=0, item={
            "id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []})
        yield event("response.content_part.added", **place, part={"type": "output_text", "text": "", "annotations": []})
        pieces = []
        try:
            async for piece in job.run(result):
                pieces.append(piece)
                yield event("response.output_text.delta", **place, delta=piece, logprobs=[])
        except Exception as error:
            yield event("error", message=f"The local model failed: {error!r}", code="server_error", param=None)
            return
        final = response_body(response_id, request, "".join(pieces), result, len(job.billed_ids), cached)
        message = final["output"][0]
        yield event("response.output_text.done", **place, text=message["content"][0]["text"], logprobs=[])
        yield event("response.content_part.done", **place, part=message["content"][0])
        yield event("response.output_item.done", output_index=0, item=message)
        yield event("response.incomplete" if final["status"] == "incomplete" else "response.completed",
                    response=final)

    return StreamingResponse(events(), media_type="text/event-stream")
