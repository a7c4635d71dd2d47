"""The OpenAI Chat Completions route: ``POST /v1/chat/completions`` (plain and streamed, ``n`` choices).

Completions, chunks, finish reasons, usage and errors have the shapes of the real API, so
``openai.OpenAI`` reads them as it reads the real API's.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi.responses import JSONResponse, StreamingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from helpers.llm_server.chat import openai_chat
from helpers.llm_server.engine import Generation, LocalModel
from helpers.llm_server.generation import Job, sse, typed
from helpers.llm_server.schemas import OpenAIRequest, RequestError, parse
from helpers.local_model import LOCAL_MODEL


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
    cached = engine.cache_book.openai_cached_tokens(job.billed_ids)  # automatic prompt caching

    def usage() -> dict:
        completion = sum(result.output_tokens for result in results)
        prompt = len(job.billed_ids)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
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
        return JSONResponse(typed(ChatCompletion, {**head, "object": "chat.completion", "choices": choices,
                                                   "usage": usage()}))

    def chunk(choices: list, **extra) -> str:
        return sse(typed(ChatCompletionChunk, {**head, "object": "chat.completion.chunk", "choices": choices, **extra}))

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
