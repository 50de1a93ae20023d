"""Export: slices -> source geometry -> BraTS NIfTI; ground truth round-trips with Dice 1."""

import nibabel as nib
import numpy as np
import pytest

from kequireg.data.geometry import CaseGeometry, extract_window
from kequireg.data.store import PreprocessedCase, SliceStore
from kequireg.data.store_writer import write_store
from kequireg.inference.nifti import brats_filename, export_case, label_image
from kequireg.evaluation.metrics import case_metrics
from kequireg.inference.regions import to_internal


def make_source(tmp_path, shape=(20, 18, 12)):
    """A small labelled 'scan' with an oblique, anisotropic LPS-like affine, saved as NIfTI."""
    rng = np.random.default_rng(0)
    affine = np.array([[-1.2, 0.1, 0.0, 90.0], [0.0, -0.9, 0.05, 120.0], [0.0, 0.0, 2.5, -70.0], [0, 0, 0, 1]])
    image = np.zeros(shape, np.float32)
    image[3:17, 2:16, 2:10] = rng.random((14, 14, 8)) + 0.1  # slices 0, 1, 10, 11 are empty -> dropped
    seg = np.zeros(shape, np.int16)
    seg[5:12, 4:11, 3:8] = 2
    seg[6:10, 5:9, 4:7] = 1
    seg[7:9, 6:8, 5:6] = 4
    source = nib.Nifti1Image(image, affine)
    source.header.set_xyzt_units("mm", "sec")
    path = tmp_path / "case_flair.nii.gz"
    nib.save(source, path)
    return nib.load(path), seg


def preprocess_like(image, seg, crop_origin=(2, 1), window=(16, 16)):
    data = np.asarray(image.dataobj)
    z = np.flatnonzero(data.any(axis=(0, 1)))
    planes = np.moveaxis(data[:, :, z], -1, 0)  # (S, X, Y)
    images = extract_window(planes, crop_origin, window)[..., None].repeat(4, -1)
    labels = extract_window(np.moveaxis(to_internal(seg)[:, :, z], -1, 0), crop_origin, window)
    return PreprocessedCase(
        case_id="BraTS19_TEST_1_1", images=images, labels=labels, geometry=CaseGeometry(
            z=z, crop_origin=crop_origin, original_shape=data.shape, affine=image.affine,
            spacing=np.array(image.header.get_zooms()[:3], float), header=image.header.binaryblock, source="case_dir"),
    )


def test_ground_truth_through_the_export_path(tmp_path):
    image, seg = make_source(tmp_path)
    case = preprocess_like(image, seg)
    store_path = write_store(tmp_path / "s.h5", [case])
    with SliceStore(store_path) as store:
        record = store.case(case.case_id)
        _, labels, _ = store.case_arrays(case.case_id)
    out = export_case(labels, record, tmp_path / "pred")
    assert out.name == brats_filename(case.case_id) == "BraTS19_TEST_1_1.nii.gz"
    written = nib.load(out)
    assert written.shape == image.shape
    np.testing.assert_allclose(written.affine, image.affine, atol=1e-6)
    assert nib.aff2axcodes(written.affine) == nib.aff2axcodes(image.affine)
    assert written.header.get_zooms() == pytest.approx(image.header.get_zooms())
    assert written.get_data_dtype() == np.uint8
    data = np.asarray(written.dataobj)
    assert set(np.unique(data)) <= {0, 1, 2, 4}
    np.testing.assert_array_equal(data, seg)
    metrics = case_metrics(seg, data, spacing=written.header.get_zooms(), scheme="brats")
    assert metrics["dice"] == 1.0 and metrics["hd95_wt"] == 0.0
    assert not list((tmp_path / "pred").glob(".*tmp*"))  # no temporary left behind


def test_export_from_a_preprocessed_case_and_overwrite(tmp_path):
    image, seg = make_source(tmp_path)
    case = preprocess_like(image, seg)
    first = export_case(np.zeros_like(case.labels), case, tmp_path)
    assert np.asarray(nib.load(first).dataobj).max() == 0
    second = export_case(case.labels, case, tmp_path)
    assert first == second
    np.testing.assert_array_equal(np.asarray(nib.load(second).dataobj), seg)


def test_label_image_validates(tmp_path):
    with pytest.raises(ValueError, match="3D"):
        label_image(np.zeros((4, 4)), np.eye(4))
    with pytest.raises(ValueError, match="affine"):
        label_image(np.zeros((4, 4, 4)), np.eye(3))
    with pytest.raises(ValueError, match="label set"):
        label_image(np.full((2, 2, 2), 4), np.eye(4))  # internal scheme has no 4
    img = label_image(np.full((2, 2, 2), 4), np.eye(4), scheme="brats")
    assert np.asarray(img.dataobj).max() == 4
