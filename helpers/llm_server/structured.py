"""Structured outputs: answers that follow a JSON schema, by constrained decoding with xgrammar.

OpenAI's ``response_format`` (``json_schema`` or ``json_object``) and Anthropic's
``output_config.format`` become a grammar; while the answer is written, a
:class:`JsonConstraint` masks every token that would break it, so even a 135M model
returns JSON that parses and fits the schema (what it says inside is still its own).
"""

from __future__ import annotations

import functools
import json

import torch
import xgrammar

from helpers.llm_server.schemas import RequestError


class JsonGrammars:
    """Compiles (and caches) the grammar of each schema for one tokenizer."""

    def __init__(self, tokenizer, vocab_size: int):
        self.info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.compiler = xgrammar.GrammarCompiler(self.info)

    @functools.lru_cache(maxsize=64)
    def compile(self, schema: str):
        """The grammar of a JSON schema given as JSON text; a schema it cannot use is a 400."""
        try:
            # compact JSON (no free whitespace): a small model cannot then spend its tokens on blank lines
            return self.compiler.compile_json_schema(schema, any_whitespace=False)
        except (RuntimeError, ValueError) as error:
            raise RequestError(f"The JSON schema could not be used: {error}") from None

    def constraint(self, schema: str) -> "JsonConstraint":
        return JsonConstraint(self.compile(schema), self.info.vocab_size)


class JsonConstraint:
    """One answer's place in its grammar: which tokens may come next."""

    def __init__(self, grammar, vocab_size: int):
        self.matcher = xgrammar.GrammarMatcher(grammar)
        self.bitmask = xgrammar.allocate_token_bitmask(1, vocab_size)

    def allowed(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` with every token the grammar forbids set to -inf."""
        logits = logits.float().clone()
        self.matcher.fill_next_token_bitmask(self.bitmask)
        xgrammar.apply_token_bitmask_inplace(logits, self.bitmask)
        return logits

    def accept(self, token: int) -> None:
        self.matcher.accept_token(token)


ANY_OBJECT = {"type": "object"}  # OpenAI's json_object mode


def schema_text(schema: dict) -> str:
    """A schema as JSON text, its keys in their order (the answer writes the properties in that order)."""
    return json.dumps(schema)
