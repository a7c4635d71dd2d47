"""Tiny-hub builder for the vision-language family: SmolVLM (Idefics3), idefics2 and CLIP ViT-B/32.

Each model is the real transformers class from a tiny config with random weights, saved with its
processor (image processor + a BPE tokenizer trained here on a few sentences, with the special tokens
the real processor needs, + a chat template like the real one) at the real model id, so that the
notebooks' ``AutoProcessor.from_pretrained(...)`` + ``AutoModelForImageTextToText.from_pretrained(...)``
(chapters 03, 10) and ``CLIPModel`` / ``CLIPProcessor.from_pretrained(...)`` (chapters 05, 10) resolve
offline. The answers are noise: only the code path is real.
"""

from __future__ import annotations

from pathlib import Path

import torch

from helpers import models
from tiny_hub import save_to_hub

# A few sentences of the kind the notebooks send: the BPE vocabularies are learned from them.
SENTENCES = [
    "User: Describe this image. Assistant: a red circle at the top left of a white picture.",
    "What is in the cup, and what is under it? A cup of coffee on a saucer, on a wooden table.",
    "Describe this image in one sentence for alt text. An astronaut in a spacesuit in front of a flag.",
    "Transcribe the first two lines, then say in one sentence what the text is about.",
    "Write the HTML and CSS for this form: a title, two labelled fields and a blue button.",
    "Describe this product photo in one sentence for a shop listing: a green square, a blue triangle.",
    "a photo of a cat, a dog, a temple, a flower, a rocket, a motorcycle, a cup of coffee.",
]

# SmolVLM-Instruct's chat template (idefics2-8b's is the same without the leading <|im_start|>).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]
ROW_COL_TOKENS = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]


def bpe_tokenizer(special: list[str], vocab_size: int = 320, **named_tokens):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``SENTENCES``; ``special`` tokens first."""
    from tokenizers import Tokenizer, decoders, models as tokenizer_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(tokenizer_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(SENTENCES, trainer)
    named = set(named_tokens.values())
    return PreTrainedTokenizerFast(tokenizer_object=bpe, **named_tokens,
                                   additional_special_tokens=[token for token in special if token not in named])


def smolvlm():
    """SmolVLM-Instruct's classes (Idefics3): a 2-layer SigLIP-style vision tower + a 2-layer Llama."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor

    tokenizer = bpe_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *IMAGE_TOKENS, "<global-img>",
                               *ROW_COL_TOKENS], unk_token="<|endoftext|>", bos_token="<|im_start|>",
                              eos_token="<end_of_utterance>", pad_token="<|im_end|>")
    # Images are resized to a longest edge of 64 and split into 32x32 tiles (up to 2x2) + the whole image
    # at 32x32, as SmolVLM does at 1536 / 384. 32 / patch 8 = 16 patches, scale_factor 2 -> 4 tokens a tile.
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 64}, max_image_size={"longest_edge": 32},
                                             do_image_splitting=True)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                  chat_template="<|im_start|>" + CHAT_TEMPLATE, image_seq_len=(32 // 8) ** 2 // 2 ** 2)
    config = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        text_config=dict(model_type="llama", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        scale_factor=2, image_token_id=processor.image_token_id, pad_token_id=tokenizer.pad_token_id)
    return generating_with(Idefics3ForConditionalGeneration(config).eval(), tokenizer), processor


def generating_with(model, tokenizer):
    """``model``, its generation config given ``tokenizer``'s bos / eos / pad ids."""
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.generation_config, name, getattr(tokenizer, name))
    return model


def idefics2():
    """idefics2-8b's classes: vision tower, perceiver resampler (8 latents) and a 2-layer Mistral."""
    from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2ImageProcessor, Idefics2Processor

    tokenizer = bpe_tokenizer(["<unk>", "<s>", "</s>", *IMAGE_TOKENS], unk_token="<unk>", bos_token="<s>",
                              eos_token="</s>", pad_token="<unk>")
    image_processor = Idefics2ImageProcessor(size={"shortest_edge": 32, "longest_edge": 48}, do_image_splitting=False)
    n_latents = 8  # the perceiver's output tokens per image = the processor's image_seq_len (idefics2-8b: 64)
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
                                  image_seq_len=n_latents)
    config = Idefics2Config(
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=48, patch_size=8),
        perceiver_config=dict(hidden_size=32, resampler_n_latents=n_latents, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=16, num_key_value_heads=1),
        text_config=dict(model_type="mistral", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id),
        image_token_id=processor.image_token_id, pad_token_id=tokenizer.pad_token_id)
    return generating_with(Idefics2ForConditionalGeneration(config).eval(), tokenizer), processor


def clip_tokenizer():
    """A CLIPTokenizer in memory: the byte alphabet (as word pieces and word ends) + BPE merges of SENTENCES."""
    import json

    from tokenizers import Tokenizer, models as tokenizer_models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = list(bytes_to_unicode().values())
    bpe = Tokenizer(tokenizer_models.BPE(end_of_word_suffix="</w>"))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=400, end_of_word_suffix="</w>", show_progress=False,
                                  initial_alphabet=alphabet)
    bpe.train_from_iterator(SENTENCES, trainer)
    merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge)
              for merge in json.loads(bpe.to_str())["model"]["merges"]]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token in alphabet + [b + "</w>" for b in alphabet]:
        vocab.setdefault(token, len(vocab))  # nothing is ever unknown
    for first, second in merges:
        vocab.setdefault(first + second, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def clip():
    """CLIP ViT-B/32's classes: 2-layer towers, 32x32 images in 8x8 patches, CLIP's own image preprocessing."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = clip_tokenizer()
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=2),
        projection_dim=16)
    return CLIPModel(config).eval(), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build(environment: dict[str, str]) -> None:
    """Write this family's tiny checkpoints into the caches that ``environment`` names."""
    hub_cache = Path(environment["HF_HUB_CACHE"])
    for model, make in ((models.SMOLVLM, smolvlm), (models.IDEFICS2, idefics2), (models.CLIP_VIT_B32, clip)):
        torch.manual_seed(0)
        save_to_hub(hub_cache, model, *make())
