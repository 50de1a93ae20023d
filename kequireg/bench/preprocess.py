"""Preprocessing time per brats-preset case, store size, slice reads (``kequireg bench preprocess``).

Workload (docs/architecture.md, issue 3): synthetic ``brats``-preset cases (240x240x155, 4 modalities,
NIfTI int16) preprocessed on one core (SimpleITK and the process limited to one thread) with the
default N4 shrink, compared with full-resolution N4 (shrink 1) on the same data; the store size
per case extrapolated to BraTS 2019's 335 training cases; one random slice read from the store.
``kequireg bench preprocess`` and ``benchmarks/bench_preprocess.py`` call :func:`run`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kequireg.bench.timing import stderr_log
from kequireg.data.case_pipeline import process_case
from kequireg.data.crop import store_window
from kequireg.data.discovery import find_cases
from kequireg.data.ingest import load_case
from kequireg.data.n4 import DEFAULT_N4_SHRINK, n4_correct
from kequireg.data.params import PreprocessParams
from kequireg.data.parts import part_summaries, parts_dir, write_part
from kequireg.data.preprocess import assemble_cases, preprocess_dataset
from kequireg.data.store import SliceStore
from kequireg.data.store_writer import write_store
from kequireg.data.synth import synthesize

BRATS_TRAINING_CASES = 335


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over the brain of |a - b| / b after scaling both to mean 1 (N4's scale is arbitrary)."""
    mask = (a > 0) & (b > 0)
    a = a[mask] / a[mask].mean()
    b = b[mask] / b[mask].mean()
    return float(np.mean(np.abs(a - b) / b))


def measure(cases: int = 2, full_modalities: int = 1, reads: int = 300, seed: int = 0, workdir: str | None = None,
            log: Callable[[str], None] | None = None) -> dict:
    """Run the preprocessing benchmark and return its figures (seconds, MB, ms).

    Args:
        cases: int. brats-preset cases to time. Defaults to 2.
        full_modalities: int in [0, 4]. Modalities of the first case also corrected with
            full-resolution N4 (minutes each); 0 skips. Defaults to 1.
        reads: int. Random single-slice reads. Defaults to 300.
        seed: int. Synthetic data seed. Defaults to 0.
        workdir: str or None. Parent of the temporary folder. Defaults to the system's.
        log: callable taking a status line. Defaults to stderr.
    """
    import SimpleITK as sitk  # lazy: SimpleITK is heavy to import and only N4 needs it

    log = log or stderr_log()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    tmp = tempfile.TemporaryDirectory(prefix="kequireg-bench-", dir=workdir)
    root = Path(tmp.name)
    log(f"generating {cases} brats-preset cases in {root}")
    t0 = time.perf_counter()
    synthesize(root / "nifti", preset="brats", cases=cases, seed=seed)
    synth_s = (time.perf_counter() - t0) / cases
    found = find_cases(root / "nifti")
    params = PreprocessParams()
    store = root / "bench.h5"
    timings = _time_cases(found, params, parts_dir(store), log)  # the timed parts are reused for the store below
    result = {
        "machine": f"{os.cpu_count()}-core {os.uname().machine}, load average {os.getloadavg()[0]:.1f} at the end",
        "cases": cases,
        "default_shrink": DEFAULT_N4_SHRINK,
        "synth_s_per_case": round(synth_s, 2),
        **timings,
    }
    if full_modalities:
        result.update(_compare_full_n4(found[0], params, full_modalities, result["default_cpu_s_per_case"], log))
    result.update(_store_sizes(root, store, params, cases))
    result.update(_read_times(store, reads, seed, cases))
    tmp.cleanup()
    return result


def _time_cases(found: list, params: PreprocessParams, parts: Path, log: Callable[[str], None]) -> dict:
    """Time reading and preprocessing each case (writing its part into ``parts``)."""
    per_case, per_case_cpu, load_s = [], [], []
    for case in found:
        t0 = time.perf_counter()
        load_case(case)
        load_s.append(time.perf_counter() - t0)
        t0, c0 = time.perf_counter(), time.process_time()
        part = process_case(case, params)
        write_part(parts, part)
        per_case.append(time.perf_counter() - t0)
        per_case_cpu.append(time.process_time() - c0)
        log(f"  {case.case_id}: {per_case[-1]:.1f} s wall, {per_case_cpu[-1]:.1f} s CPU with N4 shrink {params.n4_shrink} "
            f"(read {load_s[-1]:.1f} s)")
    return {
        "read_s_per_case": round(float(np.median(load_s)), 2),
        "default_s_per_case": round(float(np.median(per_case)), 2),
        "default_cpu_s_per_case": round(float(np.median(per_case_cpu)), 2),
    }


def _compare_full_n4(case, params: PreprocessParams, full_modalities: int, default_cpu_s_per_case: float,
                     log: Callable[[str], None]) -> dict:
    """Default-shrink N4 against full-resolution N4 on the first ``full_modalities`` modalities of ``case``."""
    loaded = load_case(case)
    t_default, t_full, diffs = 0.0, 0.0, []
    for c in range(min(full_modalities, 4)):
        vol = loaded.images[..., c]
        t0 = time.process_time()
        fast = n4_correct(vol, shrink=DEFAULT_N4_SHRINK, spacing=loaded.spacing)
        t_default += time.process_time() - t0
        log(f"  full-resolution N4 of {params.channels[c]} (slow) ...")
        t0 = time.process_time()
        full = n4_correct(vol, shrink=1, spacing=loaded.spacing)
        t_full += time.process_time() - t0
        diffs.append(_relative_difference(fast, full))
    k = min(full_modalities, 4)
    return {
        "n4_modalities_compared": k,
        "n4_default_cpu_s_per_modality": round(t_default / k, 2),
        "n4_full_cpu_s_per_modality": round(t_full / k, 2),
        "full_over_default_n4": round(t_full / max(t_default, 1e-9), 1),
        "full_cpu_s_per_case_estimate": round(default_cpu_s_per_case + 4 * (t_full - t_default) / k, 1),
        "default_vs_full_mean_rel_diff_pct": round(100 * float(np.mean(diffs)), 3),
    }


def _store_sizes(root: Path, store: Path, params: PreprocessParams, cases: int) -> dict:
    """Assemble the timed parts into stores with two compressions; their sizes per case and for BraTS."""
    report = preprocess_dataset(root / "nifti", store, params=params, workers=1, val=0.0, keep_parts=True, log=lambda m: None)
    if len(report.resumed) != cases or not report.ok:
        raise RuntimeError(f"benchmark store was not assembled from the timed parts: {report}")
    mb = store.stat().st_size / 2**20 / cases
    part_files = sorted(parts_dir(store).glob("*.npz"))
    size = store_window(part_summaries(part_files)[0])
    gz = write_store(root / "gzip.h5", assemble_cases(part_files, size, []), params={}, dtype="float16", compression="gzip")
    return {
        "store_mb_per_case_float16_lzf": round(mb, 2),
        "store_gb_335_cases_float16_lzf": round(mb * BRATS_TRAINING_CASES / 1024, 2),
        "store_gb_335_cases_float16_gzip": round(gz.stat().st_size / 2**30 / cases * BRATS_TRAINING_CASES, 2),
    }


def _read_times(store: Path, reads: int, seed: int, cases: int) -> dict:
    """Random single-slice reads (image and labels) from ``store``."""
    with SliceStore(store) as s:
        rng = np.random.default_rng(seed)
        s.read_images([0])
        times = []
        c0 = time.process_time()
        for i in rng.integers(0, s.n_slices, reads):
            t0 = time.perf_counter()
            s.read_images([int(i)])
            s.read_labels([int(i)])
            times.append(time.perf_counter() - t0)
        return {
            "slice_read_cpu_ms_mean": round(1000 * (time.process_time() - c0) / reads, 3),
            "slice_read_ms_median": round(1000 * float(np.median(times)), 3),
            "slice_read_ms_p95": round(1000 * float(np.percentile(times, 95)), 3),
            "slices_per_case": round(s.n_slices / cases, 1),
            "image_shape": list(s.image_shape),
        }


def text(result: dict) -> str:
    """The figures of :func:`measure`, one per line, and the three targets met or not."""
    lines = [f"{key:38s} {value}" for key, value in result.items()]
    if "default_s_per_case" in result:
        lines += [
            f"{'target <= 10 s per case (defaults, CPU)':38s} {'met' if result['default_cpu_s_per_case'] <= 10 else 'NOT met'}",
            f"{'target <= 12 GB for 335 cases':38s} {'met' if result['store_gb_335_cases_float16_lzf'] <= 12 else 'NOT met (lzf)'}",
            f"{'target <= 2 ms per slice read':38s} {'met' if result['slice_read_ms_median'] <= 2 else 'NOT met'}",
        ]
    return "\n".join(lines)


def run(cases: int = 2, full_modalities: int = 1, reads: int = 300, seed: int = 0, as_json: bool = False,
        echo: Callable[[str], None] = print, log: Callable[[str], None] | None = None) -> dict:
    """``kequireg bench preprocess``: :func:`measure`, then print its figures (as JSON with ``as_json``) on ``echo``.

    Returns:
        dict: the figures of :func:`measure`.
    """
    result = measure(cases=cases, full_modalities=full_modalities, reads=reads, seed=seed, log=log)
    echo(json.dumps(result, indent=2) if as_json else text(result))
    return result
