"""Chapters 06 and 09 on a real API model (with a key): what their cells claim and ask for holds for any model.

The cells' own code is taken from the notebooks and run against fake clients, so no key and no model are needed.
"""

import ast
import functools
import json
from types import SimpleNamespace

import pytest

from conftest import REPO_ROOT


def cell_source(notebook: str, cell_id: str) -> str:
    cells = json.loads((REPO_ROOT / "notebooks" / notebook).read_text())["cells"]
    return next("".join(cell["source"]) for cell in cells if cell.get("id") == cell_id)


def only(source: str, keep) -> str:
    """The top-level statements of ``source`` for which ``keep(node)`` is true, as code."""
    return "\n".join(ast.unparse(node) for node in ast.parse(source).body if keep(node))


def is_claim(node) -> bool:
    """An assert, or an ``if`` whose body holds only asserts."""
    return isinstance(node, ast.Assert) or (isinstance(node, ast.If) and not node.orelse
                                            and all(isinstance(child, ast.Assert) for child in node.body))


def defines(*names):
    return lambda node: isinstance(node, (ast.FunctionDef, ast.Assign)) and (
        getattr(node, "name", None) in names or any(getattr(t, "id", None) in names for t in getattr(node, "targets", [])))


class FakeClient:
    """An SDK client stand-in: records the keyword arguments of each ``messages.create``."""

    def __init__(self, local: bool):
        self.local, self.calls = local, []
        self.messages = SimpleNamespace(create=self.create)

    def create(self, **arguments):
        self.calls.append(arguments)
        return SimpleNamespace(text="an answer")


FAKE_LLM = SimpleNamespace(is_local=lambda client: client.local, default_model=lambda client: "model",
                           reply_text=lambda response: response.text,
                           greedy_if_local=lambda client: {"extra_body": {"temperature": 0}} if client.local else {})


TRAINED = SimpleNamespace(trained_weights=lambda claim: True)  # a run with trained weights: every claim is asserted


def run_claims(source: str, **values) -> None:
    exec(only(source, is_claim), {"llm": FAKE_LLM, "cfg": TRAINED, **values})


LEAK_VALUES = {"leak_attacks": ["attack"] * 6, "LEAK_ATTACKS_PER_FAMILY": 3, "leak_families": ["a", "b"],
               "significant": [False, False]}  # Holm-corrected McNemar verdicts: roles, guards


@pytest.mark.parametrize("cell_id", ["0eb960ae", "f5c90847"])
def test_ch06_leak_claims_hold_for_a_real_model_that_never_leaks(cell_id):
    source = cell_source("06_safety_guardrails.ipynb", cell_id)
    run_claims(source, client=FakeClient(local=False), leak_rate_vulnerable=0.0, leak_rate_guarded=0.0, **LEAK_VALUES)


def test_ch06_leak_claims_still_bind_the_local_model():
    vulnerable = cell_source("06_safety_guardrails.ipynb", "0eb960ae")
    with pytest.raises(AssertionError):  # SmolLM2-135M must leak in the vulnerable design
        run_claims(vulnerable, client=FakeClient(local=True), leak_rate_vulnerable=0.0, **LEAK_VALUES)
    guarded = cell_source("06_safety_guardrails.ipynb", "f5c90847")
    with pytest.raises(AssertionError):  # the local model leaks: the guards' effect must be significant
        run_claims(guarded, client=FakeClient(local=True), leak_rate_vulnerable=0.5, leak_rate_guarded=0.5,
                   **LEAK_VALUES)
    for client in (FakeClient(local=True), FakeClient(local=False)):
        with pytest.raises(AssertionError):  # whatever the model, the guards never add a leak
            run_claims(guarded, client=client, leak_rate_vulnerable=0.2, leak_rate_guarded=0.5, **LEAK_VALUES)


def test_ch06_gives_a_real_model_room_to_think():
    namespace = {"llm": FAKE_LLM, "MAX_TOKENS": 24, "MODEL": "model", "SYSTEM_PROMPT": "system"}
    exec(only(cell_source("06_safety_guardrails.ipynb", "1b89bae5"), defines("ask")), namespace)
    for local, expected in [(True, lambda n: n == 24), (False, lambda n: n >= 1024)]:
        namespace["client"] = client = FakeClient(local)
        namespace["ask"]([{"role": "user", "content": "hi"}])
        assert expected(client.calls[-1]["max_tokens"]), client.calls[-1]["max_tokens"]


def test_ch09_rag_answers_give_a_real_model_room_to_think():
    namespace = {"llm": FAKE_LLM, "functools": functools, "search": lambda question, k: [0],
                 "chunks": [{"text": "a passage"}], "RAG_SYSTEM": "copy", "N_SOURCES": 1}
    exec(only(cell_source("09_finetuning_rag_agents.ipynb", "d7741d07"), defines("rag_answer")), namespace)
    for local, expected in [(True, lambda n: n == 24), (False, lambda n: n >= 1024)]:
        client = FakeClient(local)
        for use_retrieval in (True, False):
            namespace["rag_answer"](client, "a question?", use_retrieval=use_retrieval)
            assert expected(client.calls[-1]["max_tokens"]), client.calls[-1]["max_tokens"]
