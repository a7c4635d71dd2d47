"""Unit tests of helpers.bias: WEAT against a case computed by hand, bootstrap gaps, zero-shot scoring."""

import math

import numpy as np
import pytest

from helpers.bias import association, counterfactual_gap, label_log_odds, weat

# A hand-computed WEAT in two dimensions. Attributes: A = {a = (1, 0)}, B = {b = (0, 1)}.
# Targets: X = {(1, 0), (3, 4)}, Y = {(0, 1), (4, 3)}; (3, 4) and (4, 3) have length 5.
#   s(w, A, B) = cos(w, a) - cos(w, b):
#   x1 = (1, 0): 1 - 0 = 1;          x2 = (3, 4): 3/5 - 4/5 = -0.2
#   y1 = (0, 1): 0 - 1 = -1;         y2 = (4, 3): 4/5 - 3/5 = 0.2
#   mean over X = 0.4, mean over Y = -0.4, difference 0.8.
#   The four values have mean 0; sample variance (1 + 0.04 + 1 + 0.04) / 3 = 2.08 / 3.
#   d = 0.8 / sqrt(2.08 / 3) = 0.96077...
#   statistic = (1 - 0.2) - (-1 + 0.2) = 1.6.
#   The 6 ways to pick 2 of the 4 values as X_i give statistics 1.6, 0, 2.4, -2.4, 0, -1.6:
#   two are >= 1.6, so the exact one-sided p-value is 2 / 6 = 1/3.
VECTORS = {"a": (1, 0), "b": (0, 1), "x1": (1, 0), "x2": (3, 4), "y1": (0, 1), "y2": (4, 3)}


def embed(words):
    return np.array([VECTORS[word] for word in words], dtype=float)


def test_weat_matches_hand_computation():
    result = weat(["x1", "x2"], ["y1", "y2"], ["a"], ["b"], embed)
    np.testing.assert_allclose(result.x_associations, [1.0, -0.2], atol=1e-12)
    np.testing.assert_allclose(result.y_associations, [-1.0, 0.2], atol=1e-12)
    assert result.effect_size == pytest.approx(0.8 / math.sqrt(2.08 / 3), abs=1e-12)
    assert result.effect_size == pytest.approx(0.960769, abs=1e-6)
    assert result.statistic == pytest.approx(1.6)
    assert result.exact and result.n_permutations == 6
    assert result.p_value == pytest.approx(1 / 3)
    np.testing.assert_allclose(sorted(result.null_statistics), [-2.4, -1.6, 0, 0, 1.6, 2.4], atol=1e-12)


def test_weat_symmetries():
    result = weat(["x1", "x2"], ["y1", "y2"], ["a"], ["b"], embed)
    swapped_targets = weat(["y1", "y2"], ["x1", "x2"], ["a"], ["b"], embed)
    swapped_attributes = weat(["x1", "x2"], ["y1", "y2"], ["b"], ["a"], embed)
    scaled = weat(["x1", "x2"], ["y1", "y2"], ["a"], ["b"], lambda words: 7.5 * embed(words))
    assert swapped_targets.effect_size == pytest.approx(-result.effect_size)
    assert swapped_attributes.effect_size == pytest.approx(-result.effect_size)
    assert scaled.effect_size == pytest.approx(result.effect_size)  # cosine ignores length
    assert scaled.p_value == pytest.approx(result.p_value)


def test_weat_accepts_vectors_directly():
    vectors = embed(["x1", "x2", "y1", "y2", "a", "b"])
    result = weat(vectors[:2], vectors[2:4], vectors[4:5], vectors[5:], embed=None)
    assert result.effect_size == pytest.approx(0.960769, abs=1e-6)


def test_weat_sampled_permutations_agree_with_exact():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(8, 5)) + 0.3, rng.normal(size=(8, 5))
    A, B = rng.normal(size=(6, 5)) + 0.3, rng.normal(size=(6, 5))
    exact = weat(X, Y, A, B, exact_limit=100_000)
    sampled = weat(X, Y, A, B, n_permutations=20_000, exact_limit=0, seed=3)
    assert exact.exact and exact.n_permutations == math.comb(16, 8)
    assert not sampled.exact and sampled.n_permutations == 20_000
    assert sampled.effect_size == exact.effect_size
    assert abs(sampled.p_value - exact.p_value) < 0.01
    assert 0 < sampled.p_value <= 1


def test_association_is_mean_cosine_difference():
    words = np.array([[1.0, 0.0]])
    A = np.array([[1.0, 0.0], [0.0, 1.0]])
    B = np.array([[0.0, 1.0]])
    assert association(words, A, B)[0] == pytest.approx(0.5 - 0.0)


def test_weat_errors_say_what_to_do():
    with pytest.raises(ValueError, match="empty"):
        weat([], ["y1"], ["a"], ["b"], embed)
    with pytest.raises(ValueError, match="zero length"):
        weat([(0, 0), (1, 0)], [(0, 1), (1, 1)], [(1, 0)], [(0, 1)])
    with pytest.raises(ValueError, match="one vector per item"):
        weat(["x1", "x2"], ["y1", "y2"], ["a"], ["b"], lambda words: np.zeros(3))


def test_counterfactual_gap_constant_shift_and_no_difference():
    rng = np.random.default_rng(0)
    base = rng.random((12, 1))
    scores = np.hstack([base + 0.1] * 4 + [base] * 4)  # group A always 0.1 higher
    result = counterfactual_gap(scores, [0, 1, 2, 3], [4, 5, 6, 7])
    assert result.gap == pytest.approx(0.1)
    assert result.ci_low == pytest.approx(0.1) and result.ci_high == pytest.approx(0.1)
    assert result.significant
    blind = counterfactual_gap(np.hstack([base] * 8), [0, 1, 2, 3], [4, 5, 6, 7])
    assert blind.gap == 0 and blind.ci_low == 0 and blind.ci_high == 0 and not blind.significant


def test_counterfactual_gap_interval_covers_noisy_zero_gap():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(30, 20))
    result = counterfactual_gap(scores, range(10), range(10, 20), n_bootstrap=1000)
    assert result.ci_low < result.gap < result.ci_high
    assert result.per_template.shape == (30,)


def test_counterfactual_gap_p_value_agrees_with_interval():
    rng = np.random.default_rng(3)
    base = rng.random((12, 1))
    shifted = counterfactual_gap(np.hstack([base + 0.1] * 4 + [base] * 4), [0, 1, 2, 3], [4, 5, 6, 7],
                                 n_bootstrap=999)
    assert shifted.p_value == pytest.approx(2 / 1000)  # no resample on the far side of 0
    blind = counterfactual_gap(np.hstack([base] * 8), [0, 1, 2, 3], [4, 5, 6, 7])
    assert blind.p_value == 1
    for seed in range(20):
        noisy = rng.normal(size=(16, 12)) + np.r_[[0.4 * (seed % 3)] * 6, [0.0] * 6]
        result = counterfactual_gap(noisy, range(6), range(6, 12), n_bootstrap=2000, seed=seed)
        assert 0 < result.p_value <= 1
        if result.significant:
            assert result.p_value < 0.06
        elif result.p_value < 0.045:
            raise AssertionError(f"p = {result.p_value} but the interval contains 0")


def _tiny_language_model():
    """A random-weight Llama with a word-level tokenizer: exercises the code path, not a real model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = "[PAD] classify : the food was good bad awful great service slow answer positive negative".split()
    backend = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="[PAD]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval(), tokenizer


def test_label_log_odds_equals_uncached_forward():
    import torch

    model, tokenizer = _tiny_language_model()
    prefix = "classify the food :"
    suffixes = [" the food was good answer", " slow service answer", " awful answer", " the service was great answer"]
    positive, negative = tokenizer.convert_tokens_to_ids(["positive"]), tokenizer.convert_tokens_to_ids(["negative"])
    cached = label_log_odds(model, tokenizer, prefix, suffixes, positive, negative, batch_size=3)
    expected = []
    with torch.inference_mode():
        for suffix in suffixes:
            ids = tokenizer(prefix + suffix, return_tensors="pt", add_special_tokens=False).input_ids
            log_probs = model(ids).logits[0, -1].log_softmax(-1)
            expected.append((log_probs[positive[0]] - log_probs[negative[0]]).item())
    np.testing.assert_allclose(cached, expected, atol=1e-4)
    assert label_log_odds(model, tokenizer, prefix, [], positive, negative).shape == (0,)
