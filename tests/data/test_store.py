"""Slice store: round trip, atomicity, geometry restore, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from kequireg.data.geometry import CaseGeometry, extract_window, paste_window, restore_plane
from kequireg.data.params import PreprocessParams
from kequireg.data.preprocess import preprocess_dataset
from kequireg.data.store import PreprocessedCase, SliceStore
from kequireg.data.store_writer import write_store
from kequireg.vocabulary import BRATS_2019


def make_case(case_id, s=3, h=8, w=8, labeled=True, seed=0, z0=2):
    rng = np.random.default_rng(seed)
    return PreprocessedCase(
        case_id=case_id,
        images=rng.random((s, h, w, 4), dtype=np.float32),
        labels=rng.integers(0, 4, (s, h, w), dtype=np.uint8) if labeled else None,
        geometry=CaseGeometry(
            z=np.arange(z0, z0 + s),
            crop_origin=(1, -1),
            original_shape=(10, 6, 9),
            affine=np.diag([1.0, 2.0, 3.0, 1.0]),
            spacing=np.array([1.0, 2.0, 3.0]),
            header=b"\x01\x02hdr",
            source=f"/data/{case_id}",
        ),
    )


def test_round_trip_keeps_pixels_and_metadata(tmp_path):
    cases = [make_case("a", seed=1), make_case("b", s=2, labeled=False, seed=2), make_case("c", s=4, seed=3)]
    path = write_store(tmp_path / "s.h5", iter(cases), params={"n4": True}, dtype="float32")
    with SliceStore(path) as store:
        assert store.n_slices == 9 and store.image_shape == (8, 8, 4)
        assert store.case_ids == ["a", "b", "c"] and store.labeled_case_ids == ["a", "c"]
        assert store.params == {"n4": True} and store.channels == ("flair", "t1", "t1ce", "t2")
        images, labels, z = store.case_arrays("c")
        np.testing.assert_array_equal(images, cases[2].images)
        np.testing.assert_array_equal(labels, cases[2].labels)
        assert store.case_arrays("b")[1] is None
        rec = store.case("b")
        assert (rec.start, rec.stop, rec.crop_origin, rec.original_shape) == (3, 5, (1, -1), (10, 6, 9))
        assert rec.header == b"\x01\x02hdr" and rec.source == "/data/b"
        np.testing.assert_array_equal(rec.affine, cases[1].affine)
        rows = store.slice_indices(["c", "a"])
        np.testing.assert_array_equal(rows, [0, 1, 2, 5, 6, 7, 8])
        # unsorted, repeated indices come back in the order asked
        got = store.read_labels([6, 0, 6])
        np.testing.assert_array_equal(got, np.stack([cases[2].labels[1], cases[0].labels[0], cases[2].labels[1]]))


def test_float16_default_is_close(tmp_path):
    case = make_case("a")
    with SliceStore(write_store(tmp_path / "s.h5", [case])) as store:
        np.testing.assert_allclose(store.read_images([0, 1, 2]), case.images, atol=1e-3)


def test_failed_write_leaves_existing_store_untouched(tmp_path):
    path = write_store(tmp_path / "s.h5", [make_case("a")])
    before = path.read_bytes()

    def cases():
        yield make_case("x")
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        write_store(path, cases())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"], "no temporary file left"


def test_incomplete_file_is_refused(tmp_path):
    path = write_store(tmp_path / "s.h5", [make_case("a")])
    with h5py.File(path, "a") as f:
        del f.attrs["complete"]
    with pytest.raises(ValueError, match="incomplete"):
        SliceStore(path)


def test_missing_store_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="kequireg preprocess"):
        SliceStore(tmp_path / "nope.h5")


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(labels=np.full((3, 8, 8), 4, np.uint8)), "internal classes"),
        (dict(images=np.full((3, 8, 8, 4), np.nan, np.float32)), "NaN"),
        (dict(geometry=CaseGeometry(z=np.arange(2), crop_origin=(1, -1), original_shape=(10, 6, 9), affine=np.eye(4),
                                    spacing=np.ones(3))), "z must"),
    ],
)
def test_bad_case_is_rejected_with_reason(tmp_path, change, message):
    case = make_case("a")
    for key, value in change.items():
        setattr(case, key, value)
    with pytest.raises(ValueError, match=message):
        write_store(tmp_path / "s.h5", [case])


def test_mismatched_slice_shapes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="differs"):
        write_store(tmp_path / "s.h5", [make_case("a"), make_case("b", h=6)])


def test_window_round_trip_with_padding():
    rng = np.random.default_rng(0)
    plane = rng.random((2, 10, 6))
    window = extract_window(plane, (1, -1), (8, 8))
    assert window.shape == (2, 8, 8)
    np.testing.assert_array_equal(window[:, :, 0], 0)  # padded column
    back = paste_window(window, (1, -1), (10, 6))
    np.testing.assert_array_equal(back[:, 1:9, :], plane[:, 1:9, :])
    np.testing.assert_array_equal(back[:, 0], 0)


def test_brats_crop_is_rows_and_cols_8_to_231():
    plane = np.arange(240 * 240).reshape(240, 240)
    window = extract_window(plane, (8, 8), (224, 224))
    assert window[0, 0] == plane[8, 8] and window[-1, -1] == plane[231, 231]


def test_restore_plane_puts_slices_back(tmp_path):
    case = make_case("a")
    with SliceStore(write_store(tmp_path / "s.h5", [case])) as store:
        rec = store.case("a")
        _, labels, _ = store.case_arrays("a")
        assert isinstance(rec.geometry, CaseGeometry) and type(rec.geometry) is type(case.geometry)
        volume = restore_plane(labels, rec.geometry)
    assert volume.shape == (10, 6, 9) and volume.dtype == np.uint8
    np.testing.assert_array_equal(volume[:, :, [0, 1, 5, 6, 7, 8]], 0)
    np.testing.assert_array_equal(volume[1:9, :, 2], case.labels[0][:, 1:7])
    with pytest.raises(ValueError, match="slices must have shape"):
        restore_plane(labels[:2], rec.geometry)


def test_read_slab_keeps_the_store_dtype_and_checks_its_range(tmp_path):
    path = write_store(tmp_path / "s.h5", [make_case("A", s=4)], params={})
    with SliceStore(path) as store:
        images, labels = store.read_slab(1, 3)
        assert images.dtype == store.image_dtype == np.float16
        np.testing.assert_array_equal(images.astype(np.float32), store.read_images([1, 2]))
        np.testing.assert_array_equal(labels, store.read_labels([1, 2]))
        assert store.read_slab(0, 2, labels=False)[1] is None
        with pytest.raises(ValueError, match="start=3, stop=9"):
            store.read_slab(3, 9)


LEGACY = Path(__file__).resolve().parent.parent / "legacy" / "main-b6eadae"


def _contents(path):
    """Every dataset (values, dtype, shape, chunks, filter) and every attribute of an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                values = obj[()]
                if values.dtype.kind == "O":
                    values = [np.asarray(v).tolist() for v in values]
                else:
                    values = values.tolist()
                out[name] = (values, str(obj.dtype), obj.shape, obj.chunks, obj.compression, obj.maxshape)
        f.visititems(visit)
        out["attrs"] = {k: str(v) for k, v in f.attrs.items()}
    return out


def test_legacy_store_loads_with_its_geometry_and_rewrites_identically(tmp_path):
    with SliceStore(LEGACY / "store.h5") as store:
        records = store.cases
        assert all(isinstance(r.geometry, CaseGeometry) for r in records)
        assert records[0].n_slices == records[0].geometry.n_slices == len(records[0].z)
        cases = []
        for r in records:
            images, labels, _ = store.case_arrays(r.case_id)
            cases.append(PreprocessedCase(case_id=r.case_id, images=images, labels=labels, geometry=r.geometry))
        path = write_store(tmp_path / "again.h5", cases, channels=store.channels, params=store.params,
                           dtype=str(store.image_dtype))
    assert _contents(path) == _contents(LEGACY / "store.h5")


def test_preprocessing_the_legacy_raw_cases_gives_the_legacy_store(tmp_path, monkeypatch):
    # the legacy store was made in its folder with `kequireg preprocess raw store.h5 --no-n4 --workers 1
    # --val 0.25 --test 0.25`: the same call now must write the same datasets and attributes
    monkeypatch.chdir(LEGACY)
    report = preprocess_dataset("raw", tmp_path / "store.h5", params=PreprocessParams(n4=False), workers=1,
                                val=0.25, test=0.25, log=lambda m: None)
    assert report.ok
    now, then = _contents(report.store_path), _contents(LEGACY / "store.h5")
    # the params now also record the planned geometry (one orientation and spacing: nothing resampled) and the
    # label schema (the legacy store holds BraTS 2019's implicitly)
    planned = json.loads(now["attrs"].pop("params"))
    assert (planned.pop("orientation"), planned.pop("spacing")) == ("LPS", [2.5, 2.5])
    assert planned.pop("label_schema") == BRATS_2019.to_dict()
    assert planned == json.loads(then["attrs"].pop("params"))
    assert now == then
    with SliceStore(LEGACY / "store.h5") as old, SliceStore(report.store_path) as new:
        assert old.schema == new.schema == BRATS_2019
    assert report.splits_path.read_text() == (LEGACY / "store.splits.json").read_text()
