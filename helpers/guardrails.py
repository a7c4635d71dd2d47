"""Guardrails around an LLM: check what goes in, check what comes out (chapter 06).

    from helpers.guardrails import check_input, check_output
    verdict = check_input(user_text)
    if not verdict.allowed:
        print(verdict.reasons)        # e.g. ['rule: override previous instructions (view: base64 payload 1)']
    answer = ...                      # call the model only when allowed
    verdict = check_output(answer, secrets=[api_key, canary], allowed_domains=["acmebooks.example"])

Defence in depth, cheapest layer first. The code is split by concern; this module gathers the public names:

- ``helpers.guard_normalise``: text and its *views*: NFKC, invisible characters, Unicode confusables, leetspeak,
  spaced letters, percent/HTML/hex/base32/base64 (also in pieces), Caesar shifts, reversed text (also of one part);
  the pieces the detector scores (a long text: each sentence, a long sentence in overlapping token windows).
- ``helpers.guard_input``: size limit (refused, never half-checked), language policy (py3langid: the seven languages
  the detector was trained on are read, others go to review), rules and the learned detector on every view and
  every piece, each piece once (one batched encoder call; skipped when a cheaper layer already blocked);
  ``check_document`` for retrieved documents (indirect injection).
- ``helpers.guard_output``: secrets in any form (also spelled out, in the NATO alphabet, encoded, split across
  turns), a link allow-list, moderation (local MiniLM head or OpenAI's endpoint).
- ``helpers.guard_links``: links and the domain allow-list (answers and retrieved documents).
- ``helpers.guard_model``: the MiniLM encoder and logistic-regression heads.
- ``helpers.guard_training``: the labelled splits and training (``scripts/train_guard.py``).
- ``helpers.guard_redteam``: ``obfuscate``, to disguise prompts when testing a guard.
"""

from helpers.guard_input import (DOCUMENT_RULES, LANGUAGES, MAX_CHARS, RULES, Verdict, check_document, check_input,
                                 check_inputs, language, rule_hits)
from helpers.guard_model import DATA_DIR, DETECTOR_FILE, MODERATION_FILE, LinearHead, embed, load_head, sentence_encoder
from helpers.guard_normalise import (as_text, caesar, decode_base32, decode_base64, decode_hex, decoded_views,
                                     input_views, normalise, skeleton, strip_invisible, windows)
from helpers.guard_links import link_reasons, remove_links
from helpers.guard_output import check_output, leak_form, local_moderation, openai_moderation, split_leak
from helpers.guard_redteam import OBFUSCATIONS, obfuscate
from helpers.guard_training import load_prompts, train_detector, train_head, train_moderation

__all__ = ["DATA_DIR", "DETECTOR_FILE", "DOCUMENT_RULES", "LANGUAGES", "MAX_CHARS", "MODERATION_FILE", "OBFUSCATIONS",
           "RULES", "LinearHead", "Verdict", "as_text", "caesar", "check_document", "check_input", "check_inputs",
           "check_output", "decode_base32", "decode_base64", "decode_hex", "decoded_views", "embed", "input_views",
           "language", "leak_form", "link_reasons", "load_head", "load_prompts", "local_moderation", "normalise",
           "obfuscate", "openai_moderation", "remove_links", "rule_hits", "sentence_encoder", "skeleton",
           "split_leak", "strip_invisible", "train_detector", "train_head", "train_moderation", "windows"]
