"""Timing helpers shared by every benchmark: best-of-rounds rates, best times, paired ratios.

Standard library only: the imgaug peer (``kequireg/bench/peers/imgaug_strong.py``) loads this
file by path in an interpreter of its own (numpy < 2, no kequireg installed), so imgaug and
augment are timed by the same loop.

Example:
    >>> best_slice_rate(lambda i: None, seconds=0.05)["slices_per_s"] > 0
    True
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable


def stderr_log(prefix: str = "") -> Callable[[str], None]:
    """A ``log`` function that prints ``prefix + message`` to stderr (status lines, not results)."""

    def log(message: str) -> None:
        print(f"{prefix}{message}", file=sys.stderr, flush=True)

    return log


def best_slice_rate(step: Callable[[int], object], seconds: float, rounds: int | None = None,
                    warmup: int = 2) -> dict:
    """Best calls/s of ``step(i)`` over ``rounds`` rounds of about ``seconds / rounds`` each.

    Many short rounds (default: one per 0.15 s) make the best round likely to be one in which
    other processes on a shared machine did not interfere. Each call of ``step`` handles one
    slice, hence the names.

    Args:
        step: callable taking the call number (a seed).
        seconds: float. Total measuring time.
        rounds: int or None. Defaults to ``max(5, int(seconds / 0.15))``.
        warmup: int. Untimed calls first. Defaults to 2.

    Returns:
        dict: ``slices_per_s`` (best round's rate), ``slices`` (timed calls),
        ``fastest_slice_ms`` (fastest single call).
    """
    rounds = rounds or max(5, int(seconds / 0.15))
    for i in range(warmup):
        step(i)
    calls, best, k = 0, 0.0, warmup
    fastest = float("inf")
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            t0 = time.perf_counter()
            step(k)
            fastest = min(fastest, time.perf_counter() - t0)
            k += 1
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / rounds and n >= 2:
                break
        calls += n
        best = max(best, n / elapsed)
    return {"slices_per_s": best, "slices": calls, "fastest_slice_ms": fastest * 1e3}


def best_time(step: Callable[[], object], repeats: int = 5) -> float:
    """Smallest wall time in seconds of ``repeats`` calls of ``step()`` after one warm-up."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def alternate(contenders: dict[str, Callable[..., float]], repeats: int) -> dict[str, list[float]]:
    """Seconds per contender and round over ``repeats`` rounds, after one warm-up round each.

    Each contender is called as ``run(warmup=bool)`` and returns its seconds. The contenders
    alternate within a round, so a round's ratio compares runs seconds apart: on a shared
    machine the load drifts between rounds far more than within one.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run(warmup=True)
    for _ in range(repeats):
        for name, run in contenders.items():
            times[name].append(run(warmup=False))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of the per-round ratios ``numerator[i] / denominator[i]``."""
    ratios = [a / b for a, b in zip(numerator, denominator)]
    return statistics.median(ratios), min(ratios), max(ratios)
