"""The embedded demo dataset: the calibrated glioma phantom, preprocessed once into a cache folder.

Any command that needs data and gets none calls :func:`ensure_demo_store`. The first call
generates the NIfTI cases, preprocesses them into a slice store (with splits beside it) and
announces this on stderr; later calls return at once. Concurrent calls (several processes) are
serialised by a lock file, and the store appears atomically, so nobody ever sees half a store.

Location: ``$KEQUIREG_CACHE`` if set, else ``~/.cache/kequireg``; inside it
``demo-v<version>/demo.h5``, ``demo.splits.json`` and ``nifti/`` (the BraTS-layout source cases,
useful for ``kequireg predict`` / ``evaluate``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from kequireg.data.preprocess import preprocess_dataset
from kequireg.data.splits import splits_path
from kequireg.data.synth import synthesize

# The cohort calibrated on the supervised baseline alone (docs/phantom.md, "Calibration runs"): the
# glioma phantom at its default knobs, 120 cases of seed 2614, 15% validation and 25% test patients
# (72 training patients: 10% labels = 8 patients). Frozen: the method comparison ran on it afterwards.
DEMO_PRESET = "glioma"
DEMO_VAL, DEMO_TEST = 0.15, 0.25
DEMO_SEED = 2614
DEMO_CASES = 120
# Bump when the generator or preprocessing changes, so old caches are not reused.
DEMO_VERSION = 5  # 3: held-out test share; 4: N4 defaults shrink (6, 6, 5), 4 x 10 iterations; 5: the glioma phantom


def cache_dir() -> Path:
    """``$KEQUIREG_CACHE`` or ``~/.cache/kequireg``."""
    env = os.environ.get("KEQUIREG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kequireg"


def demo_dir() -> Path:
    return cache_dir() / f"demo-v{DEMO_VERSION}"


def demo_store_path() -> Path:
    """Where the demo slice store lives (it may not exist yet; see :func:`ensure_demo_store`)."""
    return demo_dir() / "demo.h5"


def demo_nifti_dir() -> Path:
    """The demo's BraTS-layout NIfTI cases (exists after :func:`ensure_demo_store`)."""
    return demo_dir() / "nifti"


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_demo_store(progress: bool = True, workers: int | None = None) -> Path:
    """Return the demo store, generating and preprocessing it first if needed.

    Args:
        progress: bool. Show progress on stderr. Defaults to True.
        workers: processes for preprocessing. Defaults to all cores.

    Returns:
        Path of the ``.h5`` store; its splits file is ``kequireg.data.splits.splits_path(path)``.

    Raises:
        RuntimeError: if some demo case failed to preprocess (should not happen).

    Example:
        >>> from kequireg.data.store import SliceStore
        >>> with SliceStore(ensure_demo_store(progress=False)) as store:  # doctest: +SKIP
        ...     store.image_shape
        (64, 64, 4)
    """
    store = demo_store_path()
    if store.is_file() and splits_path(store).is_file():
        return store
    with _locked(demo_dir().with_name(demo_dir().name + ".lock")):
        if store.is_file() and splits_path(store).is_file():  # made by another process meanwhile
            return store
        def say(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)

        say(f"kequireg: no data given; building the synthetic demo dataset once in {demo_dir()} "
            "(set KEQUIREG_CACHE to put it elsewhere)")
        bar = _progress_printer("  synthesize", say) if progress else None
        synthesize(demo_nifti_dir(), preset=DEMO_PRESET, cases=DEMO_CASES, seed=DEMO_SEED, progress=bar)
        bar = _progress_printer("  preprocess", say) if progress else None
        report = preprocess_dataset(demo_nifti_dir(), store, val=DEMO_VAL, test=DEMO_TEST, workers=workers, progress=bar, log=say if progress else (lambda m: None))
        if not report.ok:
            details = "; ".join(f"{f.file}: {f.reason}" for f in report.failures)
            raise RuntimeError(f"building the demo store failed: {details}")
        say(f"kequireg: demo store ready: {store} ({len(report.cases)} cases, {report.seconds:.0f} s)")
        return store


def _progress_printer(label: str, say):
    def update(done: int, total: int, case_id: str) -> None:
        if done == total or done % max(1, total // 4) == 0:
            say(f"{label}: {done}/{total}")

    return update
