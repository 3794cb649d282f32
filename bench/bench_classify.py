"""Classification throughput: tenders per second on one core for 10 000 tenders.

Plain script (``python bench/bench_classify.py``) and importable (``run() -> dict``) for ``make bench``.
The corpus is built from the team's labelled tenders plus the shared ESA/TED captures when present, cycled
to 10 000 tenders, so the text lengths are those of real calls (ESA descriptions run to several kB).
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from tenderwatch.relevance import classify
from tenderwatch.relevance.evaluate import Sample, find_fixtures, load_samples
from tenderwatch.relevance.taxonomy import default_taxonomy

TENDERS = 10_000


def corpus(size: int = TENDERS) -> list[Sample]:
    """``size`` realistic tenders (real captures when available, the team's descriptions always)."""
    samples = list(load_samples(find_fixtures([Path.cwd(), Path(__file__).resolve().parent])).values())
    return list(itertools.islice(itertools.cycle(samples), size))


def run(size: int = TENDERS) -> dict[str, Any]:
    """Time ``size`` classifications (taxonomy compiled beforehand, as in a long-running crawl).

    ``value`` is per CPU-second of this process (one core, single-threaded): on a shared machine the wall
    clock also counts time other processes held the core. Both are reported.
    """
    tenders = corpus(size)
    default_taxonomy()
    started, cpu_started = time.perf_counter(), time.process_time()
    for sample in tenders:
        classify(sample.title, sample.description, sample.cpv, sample.buyer)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    chars = sum(len(s.title) + len(s.description or "") for s in tenders)
    return {
        "figure": "classify",
        "value": round(size / cpu, 1),
        "unit": "tenders/s (one core, CPU time)",
        "wall_tenders_per_s": round(size / elapsed, 1),
        "tenders": size,
        "cpu_seconds": round(cpu, 3),
        "wall_seconds": round(elapsed, 3),
        "mean_chars": round(chars / size),
        "distinct_texts": len({(s.title, s.description) for s in tenders}),
    }


if __name__ == "__main__":
    print(json.dumps(run()))
