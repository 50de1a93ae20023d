"""The embedded demo store: built once in $KEQUIREG_CACHE, announced, safe under concurrent calls."""

from __future__ import annotations

import threading

import pytest

from kequireg.data import demo
from kequireg.data.splits import load_splits, splits_path
from kequireg.data.store import SliceStore


def test_demo_paths_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KEQUIREG_CACHE", str(tmp_path / "cache"))
    assert demo.demo_store_path() == tmp_path / "cache" / f"demo-v{demo.DEMO_VERSION}" / "demo.h5"
    monkeypatch.delenv("KEQUIREG_CACHE")
    assert demo.cache_dir() == demo.Path.home() / ".cache" / "kequireg"


@pytest.mark.slow
def test_ensure_demo_store_builds_once_under_concurrent_calls(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("KEQUIREG_CACHE", str(tmp_path))
    monkeypatch.setattr(demo, "DEMO_CASES", 3)  # the real demo has 120; the path is the same
    results, errors = [], []

    def call():
        try:
            results.append(demo.ensure_demo_store(progress=True, workers=1))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and results[0] == results[1] == demo.demo_store_path()
    err = capfd.readouterr().err
    assert err.count("building the synthetic demo dataset") == 1, "generated once, announced on stderr"
    with SliceStore(results[0]) as store:
        assert store.image_shape == (64, 64, 4) and len(store.case_ids) == 3
    assert load_splits(splits_path(results[0]))["train"]
    mtime = results[0].stat().st_mtime_ns
    assert demo.ensure_demo_store(progress=False) == results[0] and results[0].stat().st_mtime_ns == mtime
    assert not list(tmp_path.rglob("*.tmp*")), "no temporary file or folder left"
