"""Bias measurement for chapter 07: embedding association tests, counterfactual gaps, zero-shot scores.

    from helpers.bias import weat
    result = weat(male_names, female_names, career, family, embed)
    result.effect_size, result.p_value

- ``weat``: the Word Embedding Association Test of Caliskan et al. (2017), with an exact or
  sampled permutation test; the same function runs SEAT (May et al., 2019) when ``embed``
  encodes sentences.
- ``counterfactual_gap``: the mean score difference between two groups of names or words
  slotted into the same templates, with a bootstrap confidence interval over templates and names
  and the bootstrap p-value of a zero gap.
- ``label_log_odds``: a causal language model as a zero-shot classifier: log P(label A) - log P(label B)
  for the next token, batched, with the prompt's shared prefix computed once.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WeatResult:
    """What ``weat`` measured. ``effect_size`` > 0: X is closer to A (and Y to B) than the reverse."""

    effect_size: float  # Cohen's-d-like: difference of mean associations / their std over X ∪ Y
    p_value: float  # one-sided: share of equal-size re-partitions of X ∪ Y with a statistic >= the observed
    statistic: float  # s(X, Y, A, B) = sum_x s(x, A, B) - sum_y s(y, A, B)
    n_permutations: int  # partitions scored (all of them when exact)
    exact: bool  # True: every partition was enumerated; False: randomly sampled
    x_associations: np.ndarray = field(repr=False)  # s(x, A, B) for each x in X
    y_associations: np.ndarray = field(repr=False)  # s(y, A, B) for each y in Y
    null_statistics: np.ndarray = field(repr=False)  # the permutation distribution of the statistic


def _as_matrix(items, embed, name: str) -> np.ndarray:
    if len(items) == 0:
        raise ValueError(f"The set {name} is empty: give at least one word or sentence.")
    vectors = np.asarray(embed(list(items)) if embed is not None else items, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(items):
        raise ValueError(
            f"embed must return one vector per item of {name}: got shape {vectors.shape} for "
            f"{len(items)} items. Pass a function mapping a list of strings to an (n, d) array."
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"An embedding in {name} has zero length; cosine similarity is undefined for it.")
    return vectors / norms


def association(words: np.ndarray, attribute_a: np.ndarray, attribute_b: np.ndarray) -> np.ndarray:
    """s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b) for each row w (all rows unit length)."""
    return (words @ attribute_a.T).mean(axis=1) - (words @ attribute_b.T).mean(axis=1)


def weat(
    X: Sequence,
    Y: Sequence,
    A: Sequence,
    B: Sequence,
    embed: Callable[[list], np.ndarray] | None = None,
    n_permutations: int = 10_000,
    exact_limit: int = 50_000,
    seed: int = 0,
) -> WeatResult:
    """The Word Embedding Association Test (Caliskan et al., 2017, Science 356:183).

    X, Y: target sets (e.g. male and female names); A, B: attribute sets (e.g. career and family
    words). ``embed`` maps a list of items to an (n, d) array; with ``embed=None`` the sets are
    already vectors. With s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b):

        effect size d = (mean_x s(x) - mean_y s(y)) / std_{w in X ∪ Y} s(w)      (std with ddof=1)
        statistic     = sum_x s(x) - sum_y s(y)

    The p-value is the one-sided permutation test over re-partitions (X_i, Y_i) of X ∪ Y of the
    original sizes: P[statistic_i >= statistic]. All partitions are enumerated when there are at
    most ``exact_limit`` of them (8 + 8 words: 12,870); otherwise ``n_permutations`` random ones are
    drawn and the observed partition is counted in, p = (1 + #{>=}) / (1 + n), so p is never 0.
    Ties count as exceeding (conservative), as in May et al.'s SEAT code.
    """
    if n_permutations < 1:
        raise ValueError("n_permutations must be at least 1 (use 1,000 or more for a usable p-value).")
    vectors = {name: _as_matrix(items, embed, name) for name, items in zip("XYAB", (X, Y, A, B))}
    s_x = association(vectors["X"], vectors["A"], vectors["B"])
    s_y = association(vectors["Y"], vectors["A"], vectors["B"])
    s_all = np.concatenate([s_x, s_y])
    if len(s_all) < 3:
        raise ValueError("X and Y together need at least 3 items for a standard deviation and a test.")
    spread = s_all.std(ddof=1)
    effect_size = float((s_x.mean() - s_y.mean()) / spread) if spread > 0 else 0.0
    total = s_all.sum()
    statistic = float(s_x.sum() - s_y.sum())

    n, k = len(s_all), len(s_x)
    n_partitions = math.comb(n, k)
    if n_partitions <= exact_limit:
        subsets = np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
        exact = True
    else:
        rng = np.random.default_rng(seed)
        subsets = np.argsort(rng.random((n_permutations, n)), axis=1)[:, :k]
        exact = False
    x_sums = s_all[subsets].sum(axis=1)
    null_statistics = 2 * x_sums - total  # sum over X_i minus sum over its complement Y_i
    tolerance = 1e-12 * max(1.0, abs(statistic))
    at_least = int(np.count_nonzero(null_statistics >= statistic - tolerance))
    if exact:
        p_value = at_least / len(subsets)
    else:
        p_value = (1 + at_least) / (1 + len(subsets))
    return WeatResult(
        effect_size=effect_size,
        p_value=float(p_value),
        statistic=statistic,
        n_permutations=int(len(subsets)),
        exact=exact,
        x_associations=s_x,
        y_associations=s_y,
        null_statistics=null_statistics,
    )


@dataclass(frozen=True)
class GapResult:
    """A counterfactual gap: mean score of group A minus group B over the same templates."""

    gap: float
    ci_low: float
    ci_high: float
    per_template: np.ndarray = field(repr=False)  # the gap in each template
    p_value: float = float("nan")  # two-sided bootstrap p-value of gap = 0 (see ``counterfactual_gap``)

    @property
    def significant(self) -> bool:
        """True when the confidence interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


def counterfactual_gap(
    scores: np.ndarray,
    group_a: Sequence[int],
    group_b: Sequence[int],
    n_bootstrap: int = 2_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> GapResult:
    """Gap between two groups in a (templates x people) score table, with a bootstrap interval.

    ``scores[t, j]`` is a model's score (e.g. P(positive)) for template t filled with person j;
    ``group_a`` and ``group_b`` index the columns of each group. The gap is
    mean_t [mean_{a} scores[t, a] - mean_{b} scores[t, b]]. The interval resamples templates and,
    independently, the names of each group (with replacement), since both are samples from larger
    populations of sentences and names; it is the percentile interval of ``n_bootstrap`` resamples.
    ``p_value`` inverts that interval: the smallest 1 - confidence at which the percentile interval
    would exclude 0, p = min(1, 2 (1 + #{resampled gaps on the far side of 0}) / (1 + n_bootstrap)),
    so p < 0.05 where the 95 % interval excludes 0 (up to the +1), and p = 1 for a gap that is 0 in
    every resample. Correct it for the number of gaps you test (Holm, Benjamini-Hochberg).
    """
    scores = np.asarray(scores, dtype=np.float64)
    group_a, group_b = np.asarray(group_a), np.asarray(group_b)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (templates, people) table, got shape {scores.shape}.")
    if len(group_a) == 0 or len(group_b) == 0:
        raise ValueError("Both groups need at least one column of scores.")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie between 0 and 1, e.g. 0.95.")
    per_template = scores[:, group_a].mean(axis=1) - scores[:, group_b].mean(axis=1)
    rng = np.random.default_rng(seed)
    n_templates = scores.shape[0]
    templates = rng.integers(0, n_templates, (n_bootstrap, n_templates))
    names_a = group_a[rng.integers(0, len(group_a), (n_bootstrap, len(group_a)))]
    names_b = group_b[rng.integers(0, len(group_b), (n_bootstrap, len(group_b)))]
    mean_a = scores[templates[:, :, None], names_a[:, None, :]].mean(axis=(1, 2))
    mean_b = scores[templates[:, :, None], names_b[:, None, :]].mean(axis=(1, 2))
    tail = (1 - confidence) / 2
    resampled_gaps = mean_a - mean_b
    low, high = np.quantile(resampled_gaps, [tail, 1 - tail])
    far_side = min(np.count_nonzero(resampled_gaps <= 0), np.count_nonzero(resampled_gaps >= 0))
    p_value = min(1.0, 2 * (1 + far_side) / (1 + n_bootstrap))
    return GapResult(float(per_template.mean()), float(low), float(high), per_template, float(p_value))


def label_log_odds(
    model,
    tokenizer,
    prefix: str,
    suffixes: Sequence[str],
    label_a: Sequence[int],
    label_b: Sequence[int],
    batch_size: int = 32,
    progress: bool = False,
) -> np.ndarray:
    """log P(label A) - log P(label B) for the token after ``prefix + suffix``, for each suffix.

    A causal LM as a zero-shot classifier: ``label_a`` and ``label_b`` are token ids of the label
    words (several spellings each, e.g. "positive" and "Positive"; their probabilities are summed).
    The shared ``prefix`` (system prompt, instruction) is run once and its key/value cache reused
    for every batch, so each prompt costs only its own tokens. Suffixes are right-padded and the
    score is read at each one's last real token. Only the two label rows of the output layer are
    needed: the softmax normaliser cancels in the difference.
    """
    import torch

    if len(suffixes) == 0:
        return np.zeros(0)
    output_layer = model.get_output_embeddings()
    rows_a, rows_b = output_layer.weight[list(label_a)], output_layer.weight[list(label_b)]
    bias = getattr(output_layer, "bias", None)
    bias_a = bias[list(label_a)] if bias is not None else 0.0
    bias_b = bias[list(label_b)] if bias is not None else 0.0
    device = output_layer.weight.device
    prefix_ids = tokenizer(prefix, return_tensors="pt", add_special_tokens=False).input_ids.to(device)
    batches = range(0, len(suffixes), batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="zero-shot scoring", unit="batch")
    scores = []
    with torch.inference_mode():
        prefix_cache = model(prefix_ids, use_cache=True).past_key_values
        for start in batches:
            batch = list(suffixes[start : start + batch_size])
            encoded = tokenizer(batch, return_tensors="pt", padding=True, padding_side="right",
                                add_special_tokens=False).to(device)
            size = encoded.input_ids.shape[0]
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(size)
            prefix_mask = torch.ones(size, prefix_ids.shape[1], dtype=encoded.attention_mask.dtype, device=device)
            mask = torch.cat([prefix_mask, encoded.attention_mask], dim=1)
            hidden = model.base_model(input_ids=encoded.input_ids, attention_mask=mask,
                                      past_key_values=cache, use_cache=True).last_hidden_state
            last = hidden[torch.arange(size, device=device), encoded.attention_mask.sum(dim=1) - 1]
            logits_a, logits_b = last @ rows_a.T + bias_a, last @ rows_b.T + bias_b
            scores.append(torch.logsumexp(logits_a, dim=1) - torch.logsumexp(logits_b, dim=1))
    return torch.cat(scores).float().cpu().numpy()
