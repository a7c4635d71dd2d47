"""Shared test set-up: a non-interactive plotting backend and the repository's paths."""

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Like helpers.setup() in a notebook: one torch thread (two stall on 2 shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The local LLM endpoint through both official SDKs, shared by the tests of helpers.llm and helpers.llm_server.
GREEDY = {"temperature": 0}  # the anthropic SDK (2.x) has no temperature argument: send it in extra_body


@pytest.fixture(scope="module")
def server():
    from helpers import llm_server

    return llm_server.get_server()


@pytest.fixture(scope="module")
def claude(server):
    from helpers import llm

    return llm.anthropic_client(local=True)


@pytest.fixture(scope="module")
def gpt(server):
    from helpers import llm

    return llm.openai_client(local=True)
