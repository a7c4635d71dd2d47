"""The server's lifecycle: the app's routes, uvicorn in a background thread, one server per process.

:func:`get_server` starts the course's local server on first use (the model loads then) on
a free port of 127.0.0.1; :func:`get_stand_in` starts the stand-in for the real APIs
(``helpers.api_stand_in``, keyed-path tests only).
"""

from __future__ import annotations

import asyncio
import atexit
import socket
import threading
import time
from typing import Awaitable

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from helpers.llm_server import schemas
from helpers.llm_server.anthropic_routes import anthropic_count_tokens, anthropic_error, anthropic_messages
from helpers.llm_server.engine import LocalModel
from helpers.llm_server.images import images_generations
from helpers.llm_server.openai_routes import openai_chat_completions, openai_error
from helpers.llm_server.responses import openai_responses
from helpers.llm_server.schemas import RequestError
from helpers.local_model import LOCAL_MODEL


MAX_BODY_BYTES = 32 * 2**20  # as the Anthropic API's 32 MB request limit


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request) -> bytes:
    """The request's body, refused (413) past ``MAX_BODY_BYTES`` before it is all in memory."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BodyTooLarge
    return bytes(body)


async def unless_client_leaves(request: Request, answer: Awaitable):
    """Await ``answer``; if the client hangs up first, cancel it (its generation leaves the batch)."""
    task = asyncio.ensure_future(answer)
    while not task.done():
        await asyncio.wait([task], timeout=0.1)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            return Response(status_code=499)  # nobody reads it: the client is gone
    return task.result()


def api_error(path: str, error: RequestError) -> JSONResponse:
    """An error in the shape of the API that ``path`` belongs to."""
    return anthropic_error(error) if path.startswith("/v1/messages") else openai_error(error)


def create_app(engine: LocalModel) -> FastAPI:
    app = FastAPI(title="Local LLM API (SmolLM2-135M-Instruct)")

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, _: BodyTooLarge):
        message = f"request body is larger than {MAX_BODY_BYTES // 2**20} MB: send smaller images or fewer of them."
        return api_error(request.url.path, RequestError(message, status=413, code="request_too_large"))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        message = f"The local server failed: {type(error).__name__}: {error}"
        return api_error(request.url.path, RequestError(message, status=500))

    @app.post("/v1/messages")
    async def messages(request: Request):
        return await unless_client_leaves(request, anthropic_messages(engine, await read_body(request)))

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request):
        return await anthropic_count_tokens(engine, await read_body(request))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await unless_client_leaves(request, openai_chat_completions(engine, await read_body(request)))

    @app.post("/v1/responses")
    async def responses(request: Request):
        return await unless_client_leaves(request, openai_responses(engine, await read_body(request)))

    @app.post("/v1/images/generations")
    async def image_generations(request: Request):
        return await images_generations(await read_body(request))

    @app.get("/v1/models")
    async def models(request: Request):
        if "anthropic-version" in request.headers:
            model = {"type": "model", "id": LOCAL_MODEL, "display_name": "SmolLM2 135M Instruct (local)",
                     "created_at": "2024-11-01T00:00:00Z"}
            return {"data": [model], "has_more": False, "first_id": LOCAL_MODEL, "last_id": LOCAL_MODEL}
        model = {"id": LOCAL_MODEL, "object": "model", "created": 1730419200, "owned_by": "HuggingFaceTB"}
        return {"object": "list", "data": [model]}

    return app


class LocalServer:
    """The API server in a background thread: ``LocalServer().start()``, then ``.base_url``."""

    def __init__(self, stand_in: bool = False):
        self.engine: LocalModel | None = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.port = 0
        self.stand_in = stand_in  # a stand-in for the real APIs (helpers.api_stand_in), for tests

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "LocalServer":
        self.engine = LocalModel()  # load the model first: errors show here, not at the first request
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # port 0: the system picks a free port
        self.port = sock.getsockname()[1]
        app = create_app(self.engine)
        if self.stand_in:
            from helpers.api_stand_in import create_stand_in_app

            app = create_stand_in_app(app, schemas.SERVED_MODELS)
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", access_log=False,
            lifespan="off", timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, name="llm-server", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The local LLM server did not start; see the log above.")
            time.sleep(0.02)
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop generating, close the server and wait for its thread."""
        if self.engine is not None:
            self.engine.close()
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)


_server: LocalServer | None = None
_server_lock = threading.Lock()


def get_server() -> LocalServer:
    """The process's local server, started (and the model loaded) on first use."""
    global _server
    with _server_lock:
        if _server is None or not _server.thread.is_alive():
            _server = LocalServer().start()
        return _server


_stand_in: LocalServer | None = None


def get_stand_in() -> LocalServer:
    """The process's stand-in for the real APIs (keyed-path tests), started on first use.

    It serves the course's real model ids too and caps every answer (``helpers.api_stand_in``)."""
    global _stand_in
    from helpers.api_stand_in import STAND_IN_MAX_TOKENS
    from helpers.models import ANTHROPIC_MODEL, OPENAI_MODEL

    with _server_lock:
        if _stand_in is None or not _stand_in.thread.is_alive():
            schemas.SERVED_MODELS.update({ANTHROPIC_MODEL, OPENAI_MODEL})
            schemas.max_tokens_cap = STAND_IN_MAX_TOKENS
            _stand_in = LocalServer(stand_in=True).start()
        return _stand_in
