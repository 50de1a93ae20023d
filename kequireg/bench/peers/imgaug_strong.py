"""The strong workload in imgaug 0.4.0: ``python imgaug_strong.py INPUTS.npz SECONDS``.

Run by ``kequireg.bench.augment_peers.strong_imgaug`` with the interpreter of ``--imgaug-python``
(imgaug 0.4.0 needs numpy < 2, so it cannot share kequireg's interpreter). INPUTS.npz holds
``image``, ``probs`` and ``labels`` (the same arrays augment is timed on). The rate is measured by
``kequireg/bench/timing.py``, loaded by path (kequireg need not be installed here). Prints one
JSON line: slices_per_s, slices, fastest_slice_ms, version.
"""

import importlib.util
import json
import sys
import warnings
from pathlib import Path


def _timing():
    path = Path(__file__).resolve().parents[1] / "timing.py"
    spec = importlib.util.spec_from_file_location("kequireg_bench_timing", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(npz_path: str, seconds: float) -> dict:
    warnings.filterwarnings("ignore")
    import cv2
    import imgaug
    import imgaug.augmenters as iaa
    import numpy as np
    from imgaug.augmentables.segmaps import SegmentationMapsOnImage

    cv2.setNumThreads(1)
    data = np.load(npz_path)
    image, probs, labels = data["image"], data["probs"], data["labels"]
    imgaug.seed(0)
    seq = iaa.Sequential([
        iaa.Fliplr(1.0), iaa.Flipud(1.0),
        iaa.Affine(translate_percent={"x": (-0.1, 0.1), "y": (-0.1, 0.1)}, rotate=(-20, 20),
                   shear=(-11.31, 11.31), scale=(0.9, 1.1), order=1, mode="constant", cval=0),
        iaa.ElasticTransformation(alpha=720, sigma=24, order=1, mode="constant", cval=0),
    ], random_order=True)
    seg = SegmentationMapsOnImage(labels.astype(np.int32), shape=labels.shape)

    def step(i):
        det = seq.to_deterministic()
        det.augment_image(image)
        det.augment_image(probs)
        det.augment_segmentation_maps(seg)

    return {**_timing().best_slice_rate(step, seconds), "version": imgaug.__version__}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], float(sys.argv[2]))))
