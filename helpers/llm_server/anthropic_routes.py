"""The Anthropic Messages API's routes: ``POST /v1/messages`` (plain and streamed) and ``count_tokens``.

Answers, stream events, stop reasons and errors have the shapes of the real API, so
``anthropic.Anthropic`` reads them as it reads the real API's.
"""

from __future__ import annotations

import uuid

from anthropic.types import (
    Message, RawContentBlockDeltaEvent, RawContentBlockStartEvent, RawContentBlockStopEvent, RawMessageDeltaEvent,
    RawMessageStartEvent, RawMessageStopEvent,
)
from fastapi.responses import JSONResponse, StreamingResponse

from helpers.llm_server.chat import anthropic_chat
from helpers.llm_server.engine import Generation, LocalModel
from helpers.llm_server.generation import Job, sse, typed
from helpers.llm_server.schemas import AnthropicCountRequest, AnthropicRequest, RequestError, parse
from helpers.local_model import LOCAL_MODEL


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
    usage = engine.cache_book.anthropic_usage(job.billed_ids, job.cache_breakpoints())
    message = {
        "id": f"msg_local_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": LOCAL_MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
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
        message["stop_reason"] = ANTHROPIC_STOP[result.finish]
        message["stop_sequence"] = result.stop_sequence
        message["usage"]["output_tokens"] = result.output_tokens
        return JSONResponse(typed(Message, message))

    async def events():
        yield sse(typed(RawMessageStartEvent, {"type": "message_start", "message": message}), "message_start")
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        yield sse(typed(RawContentBlockStartEvent, block), "content_block_start")
        try:
            async for piece in job.run(result):
                delta = {"type": "text_delta", "text": piece}
                event = {"type": "content_block_delta", "index": 0, "delta": delta}
                yield sse(typed(RawContentBlockDeltaEvent, event), "content_block_delta")
        except Exception as error:
            failure = {"type": "api_error", "message": f"The local model failed: {error!r}"}
            yield sse({"type": "error", "error": failure}, "error")
            return
        yield sse(typed(RawContentBlockStopEvent, {"type": "content_block_stop", "index": 0}), "content_block_stop")
        delta = {"stop_reason": ANTHROPIC_STOP[result.finish], "stop_sequence": result.stop_sequence}
        usage = {"output_tokens": result.output_tokens}
        event = {"type": "message_delta", "delta": delta, "usage": usage}
        yield sse(typed(RawMessageDeltaEvent, event), "message_delta")
        yield sse(typed(RawMessageStopEvent, {"type": "message_stop"}), "message_stop")

    return StreamingResponse(events(), media_type="text/event-stream")


async def anthropic_count_tokens(engine: LocalModel, body: bytes):
    try:
        request = parse(AnthropicCountRequest, body)
        request.max_tokens = request.max_tokens or 0
        job = Job(engine, anthropic_chat(request))
    except RequestError as error:
        return anthropic_error(error)
    return JSONResponse({"input_tokens": len(job.billed_ids)})  # cached or not: the whole prompt
