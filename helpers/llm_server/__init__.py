"""A local stand-in for the Anthropic and OpenAI APIs, served by a real small model.

``helpers.llm`` starts this server when no API key is set, so that a notebook
runs the same SDK code offline. It answers with SmolLM2-135M-Instruct
(``helpers.local_model``) on these routes:

- ``POST /v1/messages``          Anthropic Messages API (``anthropic.Anthropic``)
- ``POST /v1/messages/count_tokens``  Anthropic token counting
- ``POST /v1/chat/completions``  OpenAI Chat Completions (``openai.OpenAI``)
- ``POST /v1/responses``         OpenAI Responses API, plain and streamed (``responses``)
- ``POST /v1/images/generations``  OpenAI's images API, drawn by chapter 03's scene model (``images``)
- ``GET  /v1/models``            the one model it serves, in either shape

Tool use works without streaming (Anthropic ``tools``/``tool_choice`` with
``tool_use``/``tool_result`` blocks, OpenAI ``tools``/``tool_choice`` with
``tool_calls`` and ``tool`` messages), in SmolLM2's own function-calling format
(``helpers.llm_tools``; a 135M model is an unreliable tool caller: chapter 09
measures it). Streaming (server-sent events), ``system``, ``max_tokens``, ``temperature``
(1 by default, as the real APIs; 0 = greedy), ``top_p``, ``top_k``, stop sequences,
OpenAI's ``seed``, ``frequency_penalty`` and ``presence_penalty``, structured outputs
(OpenAI ``response_format``, Anthropic ``output_config.format``: ``structured``), usage
counts and finish reasons work as in the real APIs; bad requests, fields it does not
support, bodies over 32 MB and failures get each API's error JSON and status code, so
the SDKs raise their usual exceptions. PDFs (Anthropic ``document`` blocks, OpenAI ``file`` parts) are read
as their text (``documents``). The model cannot see: image blocks get an
honest reply, unless a vision handler was registered (:func:`register_vision_handler`).

The server runs in a background thread of the current process (one per
process), on a free port of 127.0.0.1. Concurrent requests are decoded together
and repeated prompt prefixes are not recomputed (``batching``); a client that
disconnects stops its generation, streamed or not.

The parts, each in its own module:

- ``engine``: the model, its sampler and penalties, text pieces out (``LocalModel``);
- ``batching``: continuous batching of the running requests and the prompt-prefix cache;
- ``structured``: JSON-schema answers by constrained decoding (xgrammar);
- ``schemas``: the request bodies both APIs accept, their validation, the model ids served;
- ``chat``: either API's request turned into messages for the chat template, and sampling;
- ``generation``: one request's generation in a worker thread, tool calls, images;
- ``anthropic_routes`` and ``openai_routes``: each API's routes, answers and errors;
- ``responses``: the Responses API, as the chat request it means;
- ``documents``: the text of PDFs in messages (pypdf);
- ``images``: the images route and chapter 03's scene model behind it;
- ``server``: the app, uvicorn in a background thread, ``get_server`` and ``get_stand_in``.
"""

from helpers.llm_server.chat import anthropic_chat
from helpers.llm_server.engine import Sampling, penalize, pick_token
from helpers.llm_server.generation import CANNOT_SEE, register_vision_handler
from helpers.llm_server.schemas import AnthropicRequest
from helpers.llm_server.server import get_server, get_stand_in

__all__ = [
    "CANNOT_SEE", "AnthropicRequest", "Sampling", "anthropic_chat", "get_server", "get_stand_in", "penalize",
    "pick_token", "register_vision_handler",
]
