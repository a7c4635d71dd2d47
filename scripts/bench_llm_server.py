"""Benchmark the local endpoint: batched decoding and the prompt-prefix cache, side by side in one run.

    python scripts/bench_llm_server.py        # or: make bench-llm  (about a minute on 2 cores)

Through the official OpenAI SDK, on the local server (SmolLM2-135M-Instruct, greedy):

- throughput: 16 short requests sent at once (a thread pool) against the same 16 sent one
  by one; output tokens per second of wall time;
- time to first token of a request whose ~500-token system prompt is in the prefix cache
  against the same request with the cache emptied (median of several tries each).

Writes ``results/llm_server_bench.json`` with ``batched_speedup`` and ``prefix_cache_ttft_speedup``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from helpers import llm, llm_server
from helpers.results import results_dir

COLOURS = ["red", "yellow", "green", "orange", "purple", "blue", "brown", "pink",
           "white", "black", "golden", "dark red", "light green", "bright yellow", "deep purple", "pale orange"]
SHORT_PROMPTS = [f"Name one fruit that is {colour} and say one thing about it." for colour in COLOURS]
# About 500 tokens of shop policy: the shared start of every request of a support assistant.
POLICY = " ".join(
    f"Rule {number}: orders of category {number} ship within {number % 5 + 2} working days, can be returned "
    f"within {14 + number} days with the receipt, and are refunded to the original payment method."
    for number in range(1, 19)
)


def throughput(client, prompts: list[str], max_tokens: int, workers: int) -> tuple[float, int]:
    """(output tokens per second, output tokens) for ``prompts`` sent by ``workers`` threads at once."""

    def ask(prompt: str) -> int:
        reply = client.chat.completions.create(model=llm.LOCAL_MODEL, max_tokens=max_tokens, temperature=0,
                                               messages=[{"role": "user", "content": prompt}])
        return reply.usage.completion_tokens

    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        tokens = sum(pool.map(ask, prompts))
    return tokens / (time.perf_counter() - began), tokens


def time_to_first_token(client, system: str, question: str) -> float:
    """Seconds until the first text of a streamed answer (read to its end, so that nothing runs on after it)."""
    began, first = time.perf_counter(), None
    stream = client.chat.completions.create(
        model=llm.LOCAL_MODEL, max_tokens=4, temperature=0, stream=True,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}])
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - began
    if first is None:
        raise RuntimeError("the stream ended without text")
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per short request")
    parser.add_argument("--tries", type=int, default=5, help="time-to-first-token tries, cached and not")
    arguments = parser.parse_args()
    client = llm.openai_client(local=True)
    engine = llm_server.get_server().engine
    throughput(client, SHORT_PROMPTS[:2], 4, 1)  # warm up

    one_by_one, tokens_one_by_one = throughput(client, SHORT_PROMPTS, arguments.max_tokens, workers=1)
    engine.batcher.largest_batch = 0
    batched, tokens_batched = throughput(client, SHORT_PROMPTS, arguments.max_tokens, workers=len(SHORT_PROMPTS))
    largest_batch = engine.batcher.largest_batch

    prefix_tokens = len(engine.encode([{"role": "system", "content": POLICY}]))
    uncached, cached = [], []
    for attempt in range(arguments.tries):
        question = f"Can I return an order of category {attempt + 3} after {attempt + 15} days?"
        engine.prefix_cache.entries.clear()
        uncached.append(time_to_first_token(client, POLICY, question))
        cached.append(time_to_first_token(client, POLICY, question.replace("Can I", "May I")))
    record = {
        "requests": len(SHORT_PROMPTS),
        "max_tokens": arguments.max_tokens,
        "tokens_per_second_one_by_one": round(one_by_one, 1),
        "tokens_per_second_batched": round(batched, 1),
        "output_tokens": [tokens_one_by_one, tokens_batched],
        "largest_batch": largest_batch,
        "batched_speedup": round(batched / one_by_one, 2),
        "prefix_tokens": prefix_tokens,
        "ttft_uncached_ms": round(1000 * statistics.median(uncached), 1),
        "ttft_cached_ms": round(1000 * statistics.median(cached), 1),
        "prefix_cache_ttft_speedup": round(statistics.median(uncached) / statistics.median(cached), 2),
        "threads": torch.get_num_threads(),  # the course's choice on 2 cores (helpers.config.default_threads)
    }
    path = results_dir() / "llm_server_bench.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
