"""helpers.llm_server.batching: continuous batching and the prompt-prefix cache, and the sampler's top-k / top-p."""

import threading
import time

import pytest
import torch

from helpers.llm_server.engine import Generation, LocalModel, Sampling, pick_token
from helpers.config import fast_cpu_dtype
from helpers.llm_server.batching import PrefixCache, bytes_per_position, common_length
from helpers.local_model import load_smollm2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FRUITS = [f"Name a fruit that is {colour}." for colour in ("red", "yellow", "green", "purple", "blue", "orange")]


@pytest.fixture(scope="module")
def engine():
    model = LocalModel(dtype=torch.float32)  # fp32: batched greedy answers are the answers alone (see LocalModel)
    yield model
    model.close()


def answer(engine, question: str, seed: int | None = None, **sampling) -> tuple[str, Generation]:
    result = Generation()
    prompt = engine.encode([{"role": "user", "content": question}])
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    text = "".join(engine.stream(prompt, Sampling(**{"max_tokens": 16, "temperature": 0, **sampling}), result,
                                 threading.Event(), generator=generator))
    return text, result


def test_concurrent_requests_share_steps_and_answer_as_alone(engine):
    alone = [answer(engine, question)[0] for question in FRUITS]
    together: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, answer(engine, FRUITS[i])[0]))
               for i in range(len(FRUITS))]
    engine.batcher.largest_batch = 0
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert engine.batcher.largest_batch >= 3  # they ran in one batch, not one after another
    assert [together[i] for i in range(len(FRUITS))] == alone  # greedy: the same words, padding or not
    started = time.monotonic()
    while engine.batcher.rows and time.monotonic() - started < 2:  # the last step may still be tidying up
        time.sleep(0.01)
    assert not engine.batcher.rows  # every row left the batch


def test_a_full_batch_keeps_requests_waiting_in_order_until_rows_leave(engine):
    alone = [answer(engine, question)[0] for question in FRUITS]
    prompt_length = len(engine.encode([{"role": "user", "content": FRUITS[0]}]))
    together: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, answer(engine, FRUITS[i])[0]))
               for i in range(len(FRUITS))]
    engine.batcher.largest_batch, capacity = 0, engine.batcher.max_batch_positions
    engine.batcher.max_batch_positions = 3 * prompt_length - 1  # room for two rows, never three
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        engine.batcher.max_batch_positions = capacity
    assert engine.batcher.largest_batch == 2  # batched, but never past the capacity
    assert [together.get(i) for i in range(len(FRUITS))] == alone  # every request answered, none lost


def test_the_capacity_is_an_amount_of_memory_whatever_the_dtype(engine):
    fp32_bytes = 30 * 2 * 3 * 64 * 4  # SmolLM2-135M: 30 layers x (keys + values) x 3 heads x 64 dimensions x 4 bytes
    assert bytes_per_position(engine.model) == fp32_bytes
    assert engine.batcher.max_batch_positions == 96 * 2**20 // fp32_bytes
    assert bytes_per_position(load_smollm2(torch.bfloat16)[0]) == fp32_bytes // 2  # twice the positions in bfloat16


def test_the_endpoint_runs_the_model_in_the_fast_cpu_dtype():
    from helpers import llm_server

    assert llm_server.get_server().engine.model.dtype == fast_cpu_dtype()


def test_each_row_keeps_its_own_budget_and_sampling(engine):
    results: dict[str, tuple[str, Generation]] = {}
    jobs = {"short": dict(max_tokens=3), "long": dict(max_tokens=12), "sampled": dict(temperature=1.0, seed=1)}

    def run(name):
        results[name] = answer(engine, FRUITS[0], **jobs[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results["short"][1].output_tokens == 3 and results["short"][1].finish == "length"
    assert results["long"][1].output_tokens == 12
    assert results["long"][0].startswith(results["short"][0])  # the same greedy start, cut earlier
    assert results["sampled"][0] == answer(engine, FRUITS[0], **jobs["sampled"])[0]  # its own seeded generator


def test_a_shared_prefix_is_computed_once_and_gives_the_same_answer(engine):
    system = "You are the support assistant of a bookshop. " * 20
    messages = lambda question: [{"role": "system", "content": system}, {"role": "user", "content": question}]
    engine.prefix_cache.entries.clear()
    cold = answer_with(engine, messages("Do you sell maps?"))
    reused = engine.prefix_cache.reused_tokens
    warm = answer_with(engine, messages("Do you sell maps?"))
    assert engine.prefix_cache.reused_tokens - reused > 200  # the system prompt was not computed again
    assert warm == cold


def answer_with(engine, messages) -> str:
    return "".join(engine.stream(engine.encode(messages), Sampling(max_tokens=8, temperature=0), Generation(),
                                 threading.Event()))


def test_prefix_cache_lookup_and_eviction():
    def states(length):  # one layer, one row: keys and values that say their position
        positions = torch.arange(length, dtype=torch.float32).view(1, 1, length, 1)
        return [(positions.clone(), positions.clone())]

    from transformers import DynamicCache

    cache = PrefixCache(max_tokens=10)
    cache.store([1, 2, 3, 4, 5, 6], DynamicCache(ddp_cache_data=states(6)))
    found, length = cache.lookup([1, 2, 3, 9])
    assert length == 3 and found.layers[0].keys.shape[2] == 3
    found, length = cache.lookup([1, 2, 3, 4, 5, 6])
    assert length == 5  # never the whole prompt: its last token must be computed for the next logits
    assert cache.lookup([7, 8])[1] == 0 and cache.lookup([7, 8])[0] is None
    cache.store([7, 8, 9, 10, 11], DynamicCache(ddp_cache_data=states(5)))  # 6 + 5 > 10: the oldest goes
    assert list(cache.entries) == [(7, 8, 9, 10, 11)]
    assert common_length([1, 2, 3], (1, 2, 4)) == 2 and common_length([], (1,)) == 0


def test_top_k_and_top_p_keep_only_the_best_tokens():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    draws = lambda sampling: {pick_token(logits, sampling, torch.Generator().manual_seed(seed)) for seed in range(200)}
    assert draws(Sampling(max_tokens=1, temperature=1.0)) == {0, 1, 2, 3}
    assert draws(Sampling(max_tokens=1, temperature=1.0, top_k=2)) == {0, 1}
    assert draws(Sampling(max_tokens=1, temperature=1.0, top_p=0.7)) == {0, 1}  # 0.5 + 0.3 reach 0.7
    assert draws(Sampling(max_tokens=1, temperature=1.0, top_p=0.4)) == {0}
    assert draws(Sampling(max_tokens=1, temperature=0.0)) == {0}


def test_the_committed_benchmark_meets_its_bars():
    """results/llm_server_bench.json, from scripts/bench_llm_server.py (make bench-llm) on a quiet machine."""
    import json

    from conftest import REPO_ROOT

    bench = json.loads((REPO_ROOT / "results" / "llm_server_bench.json").read_text())
    assert bench["largest_batch"] == bench["requests"] == 16  # all sixteen were decoded in one batch
    one_by_one, batched = bench["output_tokens"]  # about the same work both ways (bfloat16: a close call may flip)
    assert abs(one_by_one - batched) <= 0.05 * one_by_one
    assert bench["batched_speedup"] >= 4 and bench["prefix_cache_ttft_speedup"] >= 3


def test_the_default_dtype_and_fp32_are_one_loaded_model():
    assert load_smollm2() is load_smollm2(torch.float32)
