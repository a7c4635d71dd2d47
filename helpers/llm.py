"""One way to reach an LLM: the real Anthropic/OpenAI APIs with a key, a real local model without.

    from helpers import llm
    client = llm.anthropic_client()          # or llm.openai_client()
    reply = client.messages.create(
        model=llm.default_model(client), max_tokens=100,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    print(llm.reply_text(reply))

With ``ANTHROPIC_API_KEY`` / ``OPENAI_API_KEY`` set (or typed when asked, in
an interactive session) you get the official SDK client of the real API.
Without a key you get the *same SDK class* pointed at a server on 127.0.0.1
that answers with SmolLM2-135M-Instruct (``helpers.llm_server``): the code
you write is the code you would run against the real API, offline and free.
The local model samples at temperature 1 unless you pass one, as the real APIs
do; ``**greedy_if_local(client)`` asks it for greedy answers (and leaves the real
models, which refuse a temperature, alone). Greedy is reproducible one request at a
time; in a batch of concurrent requests a close call between two tokens can flip
(the model runs in bfloat16 where the CPU is fast at it), as on real serving stacks.
It cannot see images, and it calls tools (``tools=``, without streaming) in SmolLM2's
own format, unreliably: see ``helpers.llm_tools``.

Model ids live in ``helpers.models``, once: change them there when a provider retires a model.
Keys are never printed or written anywhere.
"""

from __future__ import annotations

import getpass
import os
import sys
from urllib.parse import urlparse

import anthropic
import openai

from helpers.local_model import LOCAL_MODEL  # the local model's id, with the model; notebooks say llm.LOCAL_MODEL
from helpers.models import ANTHROPIC_MODEL, OPENAI_MODEL  # one registry of every model the course loads

_typed_keys: dict[str, str | None] = {}  # what the user typed, for this process only (memory)
_local_base_urls: set[str] = set()  # the course's own local server(s) started by this process


def _interactive() -> bool:
    """True in a Jupyter kernel or a terminal, where getpass can ask the user."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython else None
    if getattr(shell, "kernel", None) is not None:
        return True
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _api_key(variable: str, local: bool | None) -> str | None:
    """The key from the environment, or typed once when interactive; None means: use the local model."""
    if local:
        return None
    key = os.environ.get(variable, "").strip()
    if not key and _interactive():
        if variable not in _typed_keys:
            try:
                typed = getpass.getpass(f"{variable} (press Enter to use the local model): ").strip()
            except Exception:  # a notebook run headless (nbval, nbconvert) cannot ask
                typed = ""
            _typed_keys[variable] = typed or None
        key = _typed_keys[variable] or ""
    if not key and local is False:
        raise RuntimeError(f"No API key: set the environment variable {variable}, or call with local=True.")
    return key or None


def _local_base_url(api: str) -> str:
    import torch

    from helpers import config
    from helpers.llm_server import get_server  # imports torch and loads the model: only when needed

    if config.started_at is None:  # outside a notebook's helpers.setup(): its stable thread count
        torch.set_num_threads(config.default_threads())
    server = get_server()
    _local_base_urls.add(server.base_url)
    print(f"No {api} API key: using the local model {LOCAL_MODEL} at {server.base_url} (same SDK, offline).")
    return server.base_url


def _real_api_options(api: str) -> dict:
    """Where a client of the real API goes: its provider, or the stand-in when ``GENAI_API_STAND_IN=1``.

    The stand-in (``helpers.api_stand_in``) is for the course's keyed-path tests: a student never sets it."""
    if os.environ.get("GENAI_API_STAND_IN") != "1":
        return {}
    from helpers.llm_server import get_stand_in

    print(f"GENAI_API_STAND_IN=1: the {api} client goes to the local stand-in for the real API (tests only).")
    url = get_stand_in().base_url
    return {"base_url": url + ("/v1" if api == "OpenAI" else "")}


def anthropic_client(local: bool | None = None, asynchronous: bool = False, **options) -> anthropic.Anthropic:
    """An ``anthropic.Anthropic`` client: the real API with a key, else the local server.

    ``local=True`` forces the local model, ``local=False`` insists on the real API;
    ``asynchronous=True`` gives an ``anthropic.AsyncAnthropic``. Other keyword
    ``options`` (timeout, max_retries...) go to the SDK class.
    """
    sdk_class = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    key = _api_key("ANTHROPIC_API_KEY", local)
    if key:
        print(f"Using the Anthropic API; default model {ANTHROPIC_MODEL}.")
        return sdk_class(api_key=key, **{**_real_api_options("Anthropic"), **options})
    options.setdefault("max_retries", 0)  # nothing to retry on a local server
    return sdk_class(api_key="local", base_url=_local_base_url("Anthropic"), **options)


def openai_client(local: bool | None = None, asynchronous: bool = False, **options) -> openai.OpenAI:
    """An ``openai.OpenAI`` client: the real API with a key, else the local server.

    ``local=True`` forces the local model, ``local=False`` insists on the real API;
    ``asynchronous=True`` gives an ``openai.AsyncOpenAI``. Other keyword
    ``options`` (timeout, max_retries...) go to the SDK class.
    """
    sdk_class = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    key = _api_key("OPENAI_API_KEY", local)
    if key:
        print(f"Using the OpenAI API; default model {OPENAI_MODEL}.")
        return sdk_class(api_key=key, **{**_real_api_options("OpenAI"), **options})
    options.setdefault("max_retries", 0)
    return sdk_class(api_key="local", base_url=_local_base_url("OpenAI") + "/v1", **options)


def is_local(client) -> bool:
    """True when ``client`` talks to the course's local server (started by this process).

    Another server on localhost (your own vLLM or Ollama, with a key) counts as a real API."""
    url = urlparse(str(client.base_url))
    return f"{url.scheme}://{url.netloc}" in _local_base_urls


def greedy_if_local(client) -> dict:
    """Temperature 0 for the local model, nothing for a real API: ``create(..., **greedy_if_local(client))``.

    SmolLM2 wanders when it samples, and the notebooks test its answers, so they ask it
    to decode greedily. The course's real models answer 400 to a temperature
    (``helpers.models``): they get the request as written. The anthropic SDK (2.x) has no
    ``temperature`` argument any more, so for it the field goes in ``extra_body``.
    """
    if not is_local(client):
        return {}
    if isinstance(client, (anthropic.Anthropic, anthropic.AsyncAnthropic)):
        return {"extra_body": {"temperature": 0}}
    return {"temperature": 0}


def default_model(client) -> str:
    """The model id to pass with ``client``: the local model, or the provider's course default."""
    if is_local(client):
        return LOCAL_MODEL
    if isinstance(client, (anthropic.Anthropic, anthropic.AsyncAnthropic)):
        return ANTHROPIC_MODEL
    if isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        return OPENAI_MODEL
    raise TypeError(f"Expected an Anthropic or OpenAI client, got {type(client).__name__}.")


def reply_text(response) -> str:
    """The answer's text from an Anthropic ``Message`` or an OpenAI ``ChatCompletion``.

    Anthropic replies may start with thinking blocks: only text blocks are kept.
    """
    if hasattr(response, "choices"):
        return response.choices[0].message.content or ""
    return "".join(block.text for block in response.content if block.type == "text")


def register_vision_handler(handler) -> None:
    """Let the local server answer image requests with ``handler(images, prompt) -> str``.

    ``images`` is a list of PIL images (the last user message's), ``prompt`` that
    message's text. ``None`` restores the default honest reply ("I can't see images").
    Real API clients are not affected.
    """
    from helpers.llm_server import register_vision_handler as register

    register(handler)
