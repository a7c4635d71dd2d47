"""The request bodies both APIs accept, as strict pydantic models, and their validation.

:func:`parse` validates a JSON body against a schema and turns the first problem into a
:class:`RequestError`, which each API's routes report in that API's error shape. The
model ids the server answers to (``SERVED_MODELS``) and a cap on answers' length
(``max_tokens_cap``) live here too, because validation reads them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from helpers.local_model import LOCAL_MODEL

# The model ids the server answers to, and a cap on answers' length. Once a stand-in for the real APIs
# has started (helpers.api_stand_in, keyed-path tests only), the real course models' ids are served too
# and every answer is capped.
SERVED_MODELS = {LOCAL_MODEL}
max_tokens_cap: int | None = None


class RequestError(Exception):
    """A bad request, reported in the shape of whichever API was called."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message, self.status, self.param, self.code = message, status, param, code


class Strict(BaseModel):
    # strict: "20" is not an int; a field the server does not know is refused (400), never silently ignored
    model_config = ConfigDict(strict=True, extra="forbid")


CacheControl = dict[str, Any] | None  # Anthropic prompt caching: accepted; the prefix cache is automatic here


class TextBlock(Strict):
    type: Literal["text"]
    text: str
    cache_control: CacheControl = None


class Base64Source(Strict):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(Strict):
    type: Literal["url"]
    url: str


class ImageBlock(Strict):
    type: Literal["image"]
    source: Annotated[Union[Base64Source, UrlSource], Field(discriminator="type")]
    cache_control: CacheControl = None


class PdfSource(Strict):
    type: Literal["base64"]
    media_type: Literal["application/pdf"]
    data: str


class DocumentBlock(Strict):
    """A PDF in an Anthropic message; the local server reads its text (``documents``)."""

    type: Literal["document"]
    source: PdfSource
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl = None


class ToolUseBlock(Strict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: CacheControl = None


class ToolResultBlock(Strict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[TextBlock] | None = None
    is_error: bool = False
    cache_control: CacheControl = None


AnthropicBlock = Annotated[Union[TextBlock, ImageBlock, DocumentBlock, ToolUseBlock, ToolResultBlock],
                          Field(discriminator="type")]


class AnthropicMessage(Strict):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicBlock]


class AnthropicTool(Strict):
    name: str
    description: str = ""
    input_schema: dict[str, Any]
    cache_control: CacheControl = None


class AnthropicToolChoice(Strict):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class JsonOutputFormat(Strict):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(Strict):
    format: JsonOutputFormat | None = None


class AnthropicRequest(Strict):
    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=1)
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
    metadata: dict[str, Any] | None = None  # user_id: accepted, not used
    service_tier: str | None = None
    output_config: OutputConfig | None = None  # structured outputs (helpers.llm_server.structured)


class AnthropicCountRequest(AnthropicRequest):
    max_tokens: int | None = Field(None, ge=1)  # not needed to count


class ImageUrl(Strict):
    url: str


class ImageUrlPart(Strict):
    type: Literal["image_url"]
    image_url: ImageUrl


class FileData(Strict):
    file_data: str  # data:application/pdf;base64,... (the local server cannot read uploaded file ids)
    filename: str | None = None


class FilePart(Strict):
    """A PDF in an OpenAI chat message; the local server reads its text (``documents``)."""

    type: Literal["file"]
    file: FileData


class FunctionCall(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class OpenAIMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Annotated[Union[TextBlock, ImageUrlPart, FilePart], Field(discriminator="type")]] | None = None
    tool_calls: list[ToolCall] | None = None  # assistant
    tool_call_id: str | None = None  # tool
    name: str | None = None
    refusal: str | None = None  # an assistant message sent back as the SDK returned it
    annotations: list | None = None
    audio: dict | None = None
    function_call: dict | None = None


class FunctionDefinition(Strict):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class OpenAITool(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: str


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(Strict):
    include_usage: bool = False


class JsonSchemaSpec(Strict):
    name: str
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextFormat(Strict):
    type: Literal["text"]


class JsonObjectFormat(Strict):
    type: Literal["json_object"]


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[Union[TextFormat, JsonObjectFormat, JsonSchemaFormat], Field(discriminator="type")]


class OpenAIRequest(Strict):
    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)  # the older name of max_completion_tokens
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[OpenAITool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None  # structured outputs (helpers.llm_server.structured)
    user: str | None = None  # accepted, not used
    safety_identifier: str | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None


def capped(max_tokens: int) -> int:
    """``max_tokens``, or the stand-in's cap when that is lower (an answer cut there ends as max_tokens)."""
    return max_tokens if max_tokens_cap is None else min(max_tokens, max_tokens_cap)


def parse(schema: type[Strict], body: bytes, served: set[str] | None = None) -> Any:
    """Validate a JSON body; the first (deepest) problem becomes a RequestError.

    ``served``: the model ids the route answers to (default: the chat model's, ``SERVED_MODELS``)."""
    try:
        request = schema.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        unknown = [problem for problem in problems if problem["type"] == "extra_forbidden"]
        problem = unknown[0] if unknown else max(problems, key=lambda e: len(e["loc"]))
        # drop pydantic's union labels ("str", "list[...]", "function-after...") from the location
        where = ".".join(str(p) for p in problem["loc"] if not str(p).endswith("]") and p != "str")
        if unknown:
            raise RequestError(
                f"{where}: the local server does not support this field. Remove it, or set an API key "
                "to use the real API.", param=where)
        message = problem["msg"].removeprefix("Value error, ")  # a validator's own message, as written
        raise RequestError(f"{where}: {message}" if where else message, param=where or None)
    if getattr(request, "tools", None) and request.stream:
        raise RequestError(
            "The local server does not stream tool calls: call without stream=True (or set an API key).",
            param="stream",
        )
    served = SERVED_MODELS if served is None else served
    if request.model not in served:
        raise RequestError(
            f"The local server only serves the model{'s' * (len(served) > 1)} {', '.join(map(repr, sorted(served)))}, "
            f"not {request.model!r}. "
            "Use helpers.llm.default_model(client) to choose the model id.",
            status=404,
            param="model",
            code="model_not_found",
        )
    return request
