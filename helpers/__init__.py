"""Thin helpers shared by the course's notebooks: one import, one module per concern.

- ``helpers.config``: ``setup()`` chooses profile, device, dtype and seeds everything.
- ``helpers.data``: handwritten digits and real photographs shipped offline.
- ``helpers.evaluation``: the digits classifier, FID, class entropy.
- ``helpers.plotting``: image grids, curves, spectrograms, audio players.
- ``helpers.results``: ``record_results()`` for the measured-results table.
- ``helpers.guardrails``: ``check_input`` / ``check_output`` guardrails against prompt injection and leaks.
- ``helpers.llm``: Anthropic/OpenAI SDK clients, real with a key, a local SmolLM2 endpoint without.
- ``helpers.local_model``: SmolLM2-135M-Instruct loaded offline from a PyPI package.
- chapter modules: ``bias`` (WEAT, counterfactual gaps), ``scenes`` (drawn scenes), ``speech`` (espeak, WER, consent-gated cloning).
"""

from helpers.config import Config, setup
from helpers.results import record_results

__all__ = ["Config", "setup", "record_results"]
