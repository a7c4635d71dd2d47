"""A stand-in for the real Anthropic and OpenAI APIs, for the course's keyed-path tests only.

With ``GENAI_API_STAND_IN=1`` and dummy ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` (``make
test-full-smoke`` sets them), ``helpers.llm``'s clients of the *real* APIs are pointed at this server,
so a notebook takes the branch of a student with a key (``llm.is_local()`` is False) and runs it
offline. SmolLM2 answers as the course's API models, every answer capped at a few tokens. Where the
real service does what a 135M model cannot, the stand-in answers in the right shape without a model,
and says so here:

- a chat request that gives no temperature is decoded greedily (the real models' answers are what the
  keyed branches assert on; a 135M model sampling at temperature 1 would fail them by chance);
- the real reasoning models' controls (OpenAI ``reasoning_effort``, ``verbosity``; Anthropic
  ``thinking``, ``output_config.effort``) are accepted and dropped: SmolLM2 does not reason, and the
  answer's usage says 0 reasoning tokens;
- structured outputs (OpenAI ``response_format`` / Anthropic ``output_config.format``): the smallest
  JSON that fits the schema, not the model's answer;
- ``POST /v1/moderations``: the course's local moderation classifier (``helpers.guardrails``);
- ``POST /v1/images/generations`` with the course's image model id: chapter 03's scene model draws the
  scene prompts it knows at 32×32, scaled up to the size asked for (``helpers.llm_server.images``);
- files and fine-tuning jobs: the upload is accepted and the job "succeeds" at once, untrained; the
  fine-tuned model's id is then served by SmolLM2.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import APIRouter, FastAPI, Request, UploadFile
from fastapi.responses import JSONResponse

from helpers.llm_server.images import images_generations
from helpers.models import LOCAL_IMAGE_MODEL, OPENAI_IMAGE_MODEL

STAND_IN_MAX_TOKENS = 48  # a CPU cannot write the 2,000 tokens a reasoning model is given


def schema_instance(schema: dict, definitions: dict | None = None):
    """The smallest value that a JSON schema (as the SDKs send them) accepts."""
    definitions = definitions if definitions is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return schema_instance(definitions[schema["$ref"].split("/")[-1]], definitions)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return schema_instance(schema[key][0], definitions)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: schema_instance(part, definitions) for name, part in schema.get("properties", {}).items()}
    if kind == "array":
        item = schema_instance(schema.get("items", {"type": "string"}), definitions)
        return [item] * schema.get("minItems", 0)
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "null": None}[kind]


def requested_schema(body: dict) -> dict | None:
    """The JSON schema a chat request asks its answer to follow, in either API's shape, or None."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    output_format = (body.get("output_config") or {}).get("format") or {}
    if output_format.get("type") == "json_schema":
        return output_format["schema"]
    return None


def structured_answer(path: str, body: dict) -> dict | None:
    """The answer to a chat request that asks for a JSON schema (smallest fitting JSON), else None."""
    schema = requested_schema(body)
    if schema is None or body.get("stream"):
        return None
    text = json.dumps(schema_instance(schema))
    if path == "/v1/messages":
        return {"id": f"msg_stand_in_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                "model": body["model"], "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
    return {"id": f"chatcmpl-stand-in-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": text, "refusal": None}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                      "completion_tokens_details": {"reasoning_tokens": 0}}}


CHAT_PATHS = ("/v1/messages", "/v1/chat/completions")
REASONING_CONTROLS = ("reasoning_effort", "verbosity", "thinking")


def as_smollm2_request(body: dict) -> dict:
    """A chat request to a real model, as the stand-in asks SmolLM2: greedy unless a temperature is
    given, without the reasoning controls (SmolLM2 does not reason)."""
    body = {key: value for key, value in body.items() if key not in REASONING_CONTROLS}
    output_config = {key: value for key, value in (body.pop("output_config", None) or {}).items() if key != "effort"}
    if output_config:
        body["output_config"] = output_config
    body.setdefault("temperature", 0)
    return body


def stand_in_router(served_models: set[str]) -> APIRouter:
    """The routes the stand-in serves before the local server's own ones."""
    router = APIRouter()
    files: dict[str, dict] = {}
    jobs: dict[str, dict] = {}

    @router.post("/v1/moderations")
    async def moderations(request: Request):
        from helpers.guardrails import local_moderation

        body = await request.json()
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        results = []
        for text in texts:
            flagged = local_moderation(text)
            results.append({"flagged": bool(flagged), "categories": {"illicit": bool(flagged)},
                            "category_scores": {"illicit": 1.0 if flagged else 0.0}})
        return {"id": f"modr-stand-in-{uuid.uuid4().hex[:24]}", "model": body.get("model", ""), "results": results}

    @router.post("/v1/images/generations")
    async def image_generations(request: Request):
        return await images_generations(await request.body(), served={LOCAL_IMAGE_MODEL, OPENAI_IMAGE_MODEL},
                                        any_size=True)

    @router.post("/v1/files")
    async def upload(file: UploadFile, purpose: str = "fine-tune"):
        content = await file.read()
        record = {"id": f"file-stand-in-{uuid.uuid4().hex[:24]}", "object": "file", "bytes": len(content),
                  "created_at": int(time.time()), "filename": file.filename, "purpose": purpose,
                  "status": "processed"}
        files[record["id"]] = record
        return record

    @router.post("/v1/fine_tuning/jobs")
    async def create_job(request: Request):
        body = await request.json()
        if body.get("training_file") not in files:
            return JSONResponse({"error": {"message": f"No such file: {body.get('training_file')}",
                                           "type": "invalid_request_error", "param": "training_file",
                                           "code": None}}, status_code=400)
        job_id = f"ftjob-stand-in-{uuid.uuid4().hex[:24]}"
        model = f"ft:{body['model']}:stand-in:{body.get('suffix', 'job')}:{job_id[-8:]}"
        served_models.add(model)  # the "fine-tuned" model: SmolLM2, untrained
        jobs[job_id] = {"id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()),
                        "finished_at": int(time.time()), "model": body["model"], "fine_tuned_model": model,
                        "organization_id": "org-stand-in", "result_files": [], "status": "succeeded",
                        "training_file": body["training_file"], "validation_file": None,
                        "hyperparameters": {"n_epochs": 3}, "seed": body.get("seed", 0), "error": None,
                        "trained_tokens": 0}
        return jobs[job_id]

    @router.get("/v1/fine_tuning/jobs/{job_id}")
    async def retrieve_job(job_id: str):
        return jobs[job_id]

    @router.get("/v1/fine_tuning/jobs/{job_id}/events")
    async def job_events(job_id: str):
        event = {"id": f"ftevent-{job_id[-8:]}", "object": "fine_tuning.job.event", "created_at": int(time.time()),
                 "level": "info", "message": "The stand-in trains nothing: job succeeded at once.", "type": "message"}
        return {"object": "list", "data": [event], "has_more": False}

    return router


def create_stand_in_app(local_app: FastAPI, served_models: set[str]) -> FastAPI:
    """``local_app`` (the local server's routes) with the stand-in's routes in front of them, and its chat
    requests rewritten by :func:`as_smollm2_request` (or answered by :func:`structured_answer`)."""
    local_app.router.routes[:0] = stand_in_router(served_models).routes
    local_app.add_middleware(StandInChat)
    return local_app


class StandInChat:
    """ASGI middleware: each chat request's body is read, then answered or rewritten for SmolLM2."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in CHAT_PATHS:
            return await self.app(scope, receive, send)
        raw, more = b"", True
        while more:
            message = await receive()
            raw, more = raw + message.get("body", b""), message.get("more_body", False)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:  # the local server's own validation answers it
            body = None
        if isinstance(body, dict):
            answer = structured_answer(scope["path"], body)
            if answer is not None:
                return await JSONResponse(answer)(scope, receive, send)
            raw = json.dumps(as_smollm2_request(body)).encode()
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # then the client's disconnect, as the server reports it
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        await self.app({**scope, "headers": headers}, replay, send)
