"""Tiny-hub builder, text family: DistilBERT SST-2 (chapter 07), the prompt-injection DeBERTa (chapter 06) and
SmolLM2-1.7B-Instruct (chapter 09's LoRA base).

All are the real architectures (``DistilBertForSequenceClassification``, ``DebertaV2ForSequenceClassification``,
``LlamaForCausalLM``) with tiny configs and random weights, saved with ``save_pretrained`` at the real ids. Their tokenizers are trained
here with the ``tokenizers`` library on a few sentences of the chapters that load them, with the real
tokenizers' special tokens; SmolLM2's chat template is the real model family's, read from the offline
SmolLM2-135M-Instruct folder (``helpers.local_model.smollm2_folder``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models as tokenizer_models, normalizers, pre_tokenizers, trainers

from helpers import models
from helpers.config import REPO_ROOT

from . import save_to_hub

SST2_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}  # the real checkpoint's id2label
INJECTION_LABELS = {0: "SAFE", 1: "INJECTION"}  # protectai/deberta-v3-base-prompt-injection-v2's id2label
DEBERTA_SPECIAL_TOKENS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]  # ids 0-3, as DeBERTa-v3's SentencePiece model
BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0-4, as BertTokenizer lays them out
# SmolLM2's special tokens, at the real ids: <|endoftext|> 0, <|im_start|> 1 (bos), <|im_end|> 2 (eos, pad)
SMOLLM2_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ORDER_SENTENCES = [  # the shape of chapter 09's fine-tuning data: orders in words and their JSON
    "Please send 4 lamps to Oslo for Maria.", "Chen in Dublin wants 7 mugs.", "Order for Tom: 3 books, deliver to Lyon.",
    "Can you ship 12 chairs to Aisha in Porto?", "Sara needs 2 plates delivered to Graz.",
    "Deliver 9 towels to Perth, please. Name: Ravi.",
    '{"name": "Elena", "item": "candles", "qty": 5, "city": "Quito"}',
    '{"name": "Jonas", "item": "bottles", "qty": 11, "city": "Turin"}',
    "Turn the order into JSON.", "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    "system user assistant", "What is the capital of France? The capital of France is Paris.",
]


def sst2_sentences() -> list[str]:
    """Chapter 07's counterfactual sentences (every template with every person) and its probe sentences."""
    data = json.loads((REPO_ROOT / "data" / "bias" / "counterfactual_templates.json").read_text())
    people = [person for pair in data["pairs"].values() for group in pair["groups"].values() for person in group]
    templates = [template for kind in data["templates"].values() for template in kind]
    probes = [sentence for sentences in data["probe_training"].values() for sentence in sentences]
    return [template.format(person=person) for template in templates for person in people] + probes


def distilbert_tokenizer(sentences: list[str], vocab_size: int = 400):
    """A ``DistilBertTokenizerFast`` whose WordPiece vocabulary is trained on ``sentences``."""
    from transformers import DistilBertTokenizerFast

    wordpiece = Tokenizer(tokenizer_models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.train_from_iterator(sentences, trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=BERT_SPECIAL_TOKENS, show_progress=False))
    return DistilBertTokenizerFast(vocab=wordpiece.get_vocab(), do_lower_case=True, model_max_length=512)


def distilbert_sst2(vocab_size: int):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(
        vocab_size=vocab_size, dim=16, hidden_dim=32, n_layers=1, n_heads=2, max_position_embeddings=512,
        id2label=SST2_LABELS, label2id={label: index for index, label in SST2_LABELS.items()}, pad_token_id=0)
    return DistilBertForSequenceClassification(config).eval()


def guard_sentences() -> list[str]:
    """Chapter 06's held-out and fresh prompts, attacks and benign."""
    from helpers.guard_training import load_prompts

    return [text for split in ("eval", "fresh") for text in load_prompts(split)[0]]


def deberta_tokenizer(sentences: list[str], vocab_size: int = 400):
    """A ``DebertaV2Tokenizer`` (SentencePiece-style Unigram with ``▁`` word starts) trained on ``sentences``."""
    from transformers import DebertaV2Tokenizer

    unigram = Tokenizer(tokenizer_models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    unigram.train_from_iterator(sentences, trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=DEBERTA_SPECIAL_TOKENS, unk_token="[UNK]", show_progress=False))
    vocab = [(piece, score) for piece, score in json.loads(unigram.to_str())["model"]["vocab"]]
    return DebertaV2Tokenizer(vocab=vocab, unk_id=DEBERTA_SPECIAL_TOKENS.index("[UNK]"), model_max_length=512)


def deberta_injection(vocab_size: int):
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    config = DebertaV2Config(  # DeBERTa-v3's attention (relative positions, p2c and c2p), 1 layer of width 16
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=512, relative_attention=True, position_buckets=256, max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm", type_vocab_size=0,
        id2label=INJECTION_LABELS, label2id={label: index for index, label in INJECTION_LABELS.items()},
        pad_token_id=0)
    return DebertaV2ForSequenceClassification(config).eval()


def smollm2_chat_template() -> str:
    """SmolLM2's chat template, from the offline SmolLM2-135M-Instruct folder (the same model family)."""
    from transformers import AutoTokenizer

    from helpers.local_model import smollm2_folder

    return AutoTokenizer.from_pretrained(smollm2_folder()).chat_template


def smollm2_tokenizer(sentences: list[str], chat_template: str, vocab_size: int = 400):
    """A byte-level BPE tokenizer with SmolLM2's special tokens (at its ids) and its chat template."""
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(tokenizer_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(sentences, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SMOLLM2_SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # every byte: any text encodes
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>", chat_template=chat_template, model_max_length=8192)


def smollm2(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(  # SmolLM2-1.7B's architecture (llama, tied embeddings), 2 layers of width 16
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaForCausalLM(config).eval()


def build(environment: dict[str, str]) -> None:
    """Write this family's tiny checkpoints into the caches that ``environment`` names."""
    hub_cache = Path(environment["HF_HUB_CACHE"])

    sst2_tokenizer = distilbert_tokenizer(sst2_sentences())
    save_to_hub(hub_cache, models.DISTILBERT_SST2, distilbert_sst2(len(sst2_tokenizer)), sst2_tokenizer)

    injection_tokenizer = deberta_tokenizer(guard_sentences())
    save_to_hub(hub_cache, models.PROMPT_INJECTION_DEBERTA, deberta_injection(len(injection_tokenizer)),
                injection_tokenizer)

    lm_tokenizer = smollm2_tokenizer(ORDER_SENTENCES, smollm2_chat_template())
    lm = smollm2(len(lm_tokenizer))
    lm.generation_config.bos_token_id, lm.generation_config.eos_token_id = 1, 2
    lm.generation_config.pad_token_id = 2
    save_to_hub(hub_cache, models.SMOLLM2_17B, lm, lm_tokenizer)
