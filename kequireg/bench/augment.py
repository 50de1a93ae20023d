"""The augment engine against its peers (docs/architecture.md "Performance workloads").

Workloads, all on the same inputs in one run:

* **strong, one core**: per slice a 224x224x4 float32 image, a 224x224x4 float32 probability
  map (bilinear) and a 224x224 uint8 label map (nearest), warped by one strong transform with
  every op on (flips, translate x/y, rotate, shear, scale, elastic). Slices/s for augment and
  for each installed peer: albumentations, scipy.ndimage, imgaug 0.4.0 (run in its own
  interpreter, ``imgaug_python``, because it needs numpy < 2; ``peers/imgaug_strong.py``).
* **bare warp**: the same 9 channels on one precomputed grid vs ``cv2.remap`` of that grid.
* **parallel scaling**: a batch of 64 (grids + the 9 channels) on all cores vs one core.
* **compile**: first-call time with an empty Numba cache, and with the cache filled
  (``peers/augment_compile.py`` in fresh processes).

Rates are the best of many short rounds (robust to other processes on a shared machine).
``kequireg bench augment`` and ``benchmarks/bench_augment.py`` call :func:`run`.

Example:
    >>> results = measure(seconds=0.2, batch=2, repeats=1, peers=(), skip_compile=True,  # doctest: +SKIP
    ...                   progress=False)
    >>> print(markdown(results))                                                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable

from kequireg.bench.augment_peers import PEER_SCRIPTS, strong_albumentations, strong_imgaug, strong_scipy
from kequireg.bench.timing import best_slice_rate, best_time, stderr_log
from kequireg.io import atomic_write_json

SHAPE = (224, 224)
PEERS = ("albumentations", "scipy", "imgaug")
TARGETS = {"imgaug": 12.0, "albumentations": 5.0, "bare_warp_time_ratio": 1.5, "parallel_speedup_2_cores": 1.7}


def make_inputs(seed: int = 0):
    """Image (224,224,4) float32 in [0,1], probabilities (224,224,4) float32, labels (224,224) uint8."""
    import numpy as np

    rng = np.random.default_rng(seed)
    image = rng.random(SHAPE + (4,), dtype=np.float32)
    logits = rng.normal(size=SHAPE + (4,)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 4, SHAPE).astype(np.uint8)
    return image, probs.astype(np.float32), labels


def all_ops_policy():
    """``augment.strong()``'s ops, every one applied (the worst case), in random order."""
    import augment

    return augment.Policy(augment.strong().ops, n_ops=None, random_order=True)


# ---- strong workload ------------------------------------------------------------------------
def strong_augment(inputs, seconds: float) -> dict:
    import augment

    image, probs, labels = inputs
    policy = all_ops_policy()

    def step(i):
        grid = policy.sample(SHAPE, i).grid()
        augment.warp(grid, image=image, labels=labels, probs=probs)

    return best_slice_rate(step, seconds)


# ---- bare warp ------------------------------------------------------------------------------
def bare_warp(inputs, repeats: int) -> dict:
    try:
        import cv2
    except ImportError:
        return {"skipped": "OpenCV is not installed (pip install 'kequireg[bench]' or opencv-python-headless)"}
    import numpy as np

    import augment

    image, probs, labels = inputs
    grid = all_ops_policy().sample(SHAPE, 12345).grid()
    xy = np.ascontiguousarray(grid[..., ::-1])  # cv2 wants (x, y) = (col, row)
    stack9 = np.ascontiguousarray(np.concatenate([image, probs, labels[..., None].astype(np.float32)], -1))

    def ours():
        augment.warp(grid, image=image, labels=labels, probs=probs)

    def ours_separate():
        augment.warp_image(image, grid)
        augment.warp_probs(probs, grid)
        augment.warp_labels(labels, grid)

    def cv2_three():
        cv2.remap(image, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cv2.remap(probs, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        cv2.remap(labels, xy, None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def cv2_stack():
        cv2.remap(stack9, xy, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def timed(fn):
        # smallest single-call time over many calls: the uncontended cost, for both sides alike
        return best_time(fn, max(200, repeats))

    t_ours, t_three, t_stack = timed(ours), timed(cv2_three), timed(cv2_stack)
    t_separate = timed(ours_separate)
    return {
        "augment_ms": t_ours * 1e3,
        "augment_separate_calls_ms": t_separate * 1e3,
        "cv2_remap_ms": t_three * 1e3,
        "cv2_remap_9ch_stack_ms": t_stack * 1e3,
        "time_ratio": t_ours / t_three,
        "time_ratio_vs_9ch_stack": t_ours / t_stack,
        "cv2_version": cv2.__version__,
    }


# ---- parallel scaling -----------------------------------------------------------------------
def parallel_scaling(inputs, batch: int, repeats: int) -> dict:
    import numba
    import numpy as np

    import augment

    image, probs, labels = inputs
    images = np.ascontiguousarray(np.broadcast_to(image, (batch,) + image.shape))
    probss = np.ascontiguousarray(np.broadcast_to(probs, (batch,) + probs.shape))
    labelss = np.ascontiguousarray(np.broadcast_to(labels, (batch,) + labels.shape))
    policy = all_ops_policy()
    seeds = list(range(batch))

    def step():
        grids = policy.sample_grids(SHAPE, seeds)
        augment.warp(grids, image=images, labels=labelss, probs=probss)

    threads = numba.config.NUMBA_NUM_THREADS
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = best_time(step, repeats)
        numba.set_num_threads(threads)
        many = best_time(step, repeats)
    finally:
        numba.set_num_threads(before)
    return {"batch": batch, "threads": threads, "one_core_s": one, "all_cores_s": many, "speedup": one / many}


# ---- compile time ---------------------------------------------------------------------------
def compile_times() -> dict:
    """First-call seconds in a fresh process with an empty Numba cache, then with it filled."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):  # empty cache, then filled cache
            proc = subprocess.run([sys.executable, str(PEER_SCRIPTS / "augment_compile.py")], capture_output=True,
                                  text=True, env=env, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"cold_first_call_s": runs[0]["first_call_s"], "cached_first_call_s": runs[1]["first_call_s"], "import_s": runs[1]["import_s"]}


# ---- driver ---------------------------------------------------------------------------------
def _cv2_threads(n: int) -> None:
    try:
        import cv2
    except ImportError:
        return
    cv2.setNumThreads(n)


def _load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def measure(seconds: float = 3.0, batch: int = 64, repeats: int = 5, imgaug_python: str | None = None,
            peers: tuple[str, ...] = PEERS, skip_compile: bool = False, progress: bool = True,
            log: Callable[[str], None] | None = None) -> dict:
    """Run every workload; returns a JSON-friendly dict (see :func:`markdown` for the tables).

    Args:
        seconds: float. Measuring time per strong-workload library. Defaults to 3.
        batch: int. Batch size of the parallel-scaling workload. Defaults to 64.
        repeats: int. Repeats of bare warp and parallel scaling (best kept). Defaults to 5.
        imgaug_python: str or None. Interpreter with imgaug==0.4.0 and numpy<2; None skips imgaug.
        peers: names among ``PEERS`` to measure. Defaults to all.
        skip_compile: bool. Do not measure the Numba compile time. Defaults to False.
        progress: bool. Status lines on ``log``. Defaults to True.
        log: callable taking a status line. Defaults to stderr.
    """
    import numba
    import numpy as np

    import augment  # noqa: F401  (compiles/loads the kernels before timing)

    say = (log or stderr_log()) if progress else (lambda message: None)
    results: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS,
            "load_average_at_start": _load_average(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "settings": {"seconds_per_workload": seconds, "batch": batch, "repeats": repeats},
    }
    inputs = make_inputs()
    if not skip_compile:
        say("compile: first calls with an empty and a filled Numba cache ...")
        results["compile"] = compile_times()
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    _cv2_threads(1)
    try:
        say("strong workload, one core: augment ...")
        strong = {"augment": strong_augment(inputs, seconds)}
        if "albumentations" in peers:
            say("strong workload, one core: albumentations ...")
            try:
                strong["albumentations"] = strong_albumentations(inputs, seconds)
            except ImportError:
                strong["albumentations"] = {"skipped": "albumentations is not installed (pip install albumentations)"}
        if "scipy" in peers:
            say("strong workload, one core: scipy.ndimage ...")
            strong["scipy"] = strong_scipy(inputs, seconds)
        if "imgaug" in peers:
            say("strong workload, one core: imgaug 0.4.0 (subprocess) ...")
            strong["imgaug"] = strong_imgaug(inputs, seconds, imgaug_python)
        ours = strong["augment"]
        for name, res in strong.items():
            if name != "augment" and "slices_per_s" in res:
                res["augment_speedup"] = ours["slices_per_s"] / res["slices_per_s"]
                res["augment_speedup_fastest_slice"] = res["fastest_slice_ms"] / ours["fastest_slice_ms"]
        results["strong_one_core"] = strong
        say("bare warp vs cv2.remap, one core ...")
        results["bare_warp"] = bare_warp(inputs, repeats)
    finally:
        numba.set_num_threads(before)
        _cv2_threads(-1)
    say(f"parallel scaling: batch of {batch}, {numba.config.NUMBA_NUM_THREADS} threads vs 1 ...")
    results["parallel"] = parallel_scaling(inputs, batch, repeats)
    results["machine"]["load_average_at_end"] = _load_average()
    return results


def markdown(results: dict) -> str:
    """The results of :func:`measure` as Markdown tables."""
    lines = [
        "| strong workload, one core | slices/s (best round) | augment speedup | fastest slice (ms) | speedup by fastest slice | target |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in results["strong_one_core"].items():
        if "skipped" in res:
            lines.append(f"| {name} | skipped: {res['skipped']} | | | | |")
            continue
        label = name if "version" not in res else f"{name} {res['version']}"
        speed = "" if name == "augment" else f"{res['augment_speedup']:.1f}x"
        speed_fast = "" if name == "augment" else f"{res['augment_speedup_fastest_slice']:.1f}x"
        target = f">= {TARGETS[name]:g}x" if name in TARGETS else ""
        lines.append(f"| {label} | {res['slices_per_s']:.1f} | {speed} | {res['fastest_slice_ms']:.2f} | {speed_fast} | {target} |")
    bw = results["bare_warp"]
    if "skipped" in bw:
        lines += ["", f"bare warp vs cv2.remap: skipped: {bw['skipped']}"]
    else:
        lines += [
            "",
            "| bare warp, 9 channels, one core | ms |",
            "|---|---:|",
            f"| augment, `augment.warp` (image 4 + probs 4 + labels 1, one pass) | {bw['augment_ms']:.3f} |",
            f"| augment, separate warp_image + warp_probs + warp_labels | {bw['augment_separate_calls_ms']:.3f} |",
            f"| cv2.remap {bw['cv2_version']} (linear 4 + linear 4 + nearest 1) | {bw['cv2_remap_ms']:.3f} |",
            f"| cv2.remap, one 9-channel float32 stack | {bw['cv2_remap_9ch_stack_ms']:.3f} |",
            f"| time ratio augment / cv2 (target <= {TARGETS['bare_warp_time_ratio']:g}) | {bw['time_ratio']:.2f} "
            f"(vs 9-ch stack {bw['time_ratio_vs_9ch_stack']:.2f}) |",
        ]
    par = results["parallel"]
    lines += [
        "",
        f"| parallel, batch of {par['batch']} | s per batch |",
        "|---|---:|",
        f"| 1 thread | {par['one_core_s']:.3f} |",
        f"| {par['threads']} threads | {par['all_cores_s']:.3f} |",
        f"| speedup (target >= {TARGETS['parallel_speedup_2_cores']:g} on 2 cores) | {par['speedup']:.2f}x |",
    ]
    if "compile" in results:
        c = results["compile"]
        lines += [
            "",
            f"Numba compile (first call, empty cache): {c['cold_first_call_s']:.1f} s; "
            f"with the cache filled: {c['cached_first_call_s']:.2f} s; `import augment`: {c['import_s']:.2f} s.",
        ]
    m = results["machine"]
    lines += [
        "",
        f"Machine: {m['cpu_count']}-core {m['cpu']}, load average {m['load_average_at_start']} at start "
        f"(shared machine; numbers are best-of-rounds), Python {m['python']}, NumPy {m['numpy']}, Numba {m['numba']}.",
    ]
    return "\n".join(lines)


def run(json_path: str | os.PathLike | None = None, seconds: float = 3.0, batch: int = 64, repeats: int = 5,
        imgaug_python: str | None = None, peers: tuple[str, ...] = PEERS, skip_compile: bool = False,
        progress: bool = True, echo: Callable[[str], None] = print, log: Callable[[str], None] | None = None) -> dict:
    """``kequireg bench augment``: :func:`measure`, print :func:`markdown` on ``echo``, write the JSON.

    Args:
        json_path: path or None. Also write the results there as JSON (atomically).
        seconds, batch, repeats, imgaug_python, peers, skip_compile, progress, log: as :func:`measure`.
        echo: callable taking the results text. Defaults to ``print`` (stdout).

    Returns:
        dict: the results of :func:`measure`.
    """
    results = measure(seconds, batch, repeats, imgaug_python, tuple(peers), skip_compile, progress, log)
    echo(markdown(results))
    if json_path:
        atomic_write_json(json_path, results)
        if progress:
            (log or stderr_log())(f"wrote {json_path}")
    return results
