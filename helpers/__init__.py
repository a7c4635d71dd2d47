"""Thin helpers shared by the course's notebooks: one import, one module per concern.

- ``helpers.config``: ``setup()`` chooses profile, device, dtype and seeds everything.
- ``helpers.data``: handwritten digits and real photographs shipped offline.
- ``helpers.evaluation``: the digits classifier, FID, class entropy.
- ``helpers.plotting``: image grids, curves, spectrograms, audio players.
- ``helpers.results``: ``record_results()`` for the measured-results table, and the small profile's budget.
- ``helpers.models``: every model id the course loads, with its pinned revision.
- ``helpers.exercises``: ``expect_stub_fails()``: an exercise's check fails on its stub, with the stub's hint.
- ``helpers.source``: ``show_source()`` shows in a notebook the code a chapter's module runs.
- ``helpers.guardrails``: ``check_input`` / ``check_output`` guardrails against prompt injection and leaks
  (split by concern into ``helpers.guard_normalise``, ``guard_input``, ``guard_output``, ``guard_model``,
  ``guard_training``, ``guard_redteam``).
- ``helpers.llm``: Anthropic/OpenAI SDK clients, real with a key, a local SmolLM2 endpoint without
  (``helpers.llm_server``; ``helpers.api_stand_in`` stands in for the real APIs in the keyed-path tests).
- ``helpers.local_model``: SmolLM2-135M-Instruct loaded offline from a PyPI package.
- chapter modules: ``gans`` (01), ``diffusion`` (02), ``text_to_image`` and ``scenes`` (03: the scene models and
  the drawn scenes), ``speech`` (espeak, WER, consent-gated cloning), ``bias`` (WEAT, counterfactual gaps).
"""

from helpers.config import Config, setup
from helpers.results import record_results

__all__ = ["Config", "setup", "record_results"]
