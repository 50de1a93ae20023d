"""`kequireg bench augment` runs end to end (tiny settings) and writes its JSON atomically; the
benchmarks/ scripts and the imgaug peer run on the ``kequireg.bench`` library."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli.bench_augment import augment as bench_augment
from cli.main import main


def test_bench_augment_command_writes_table_and_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        bench_augment,
        ["--peers", "none", "--seconds", "0.2", "--batch", "2", "--repeats", "1", "--skip-compile", "--no-progress",
         "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "| augment |" in result.output
    data = json.loads(out.read_text())
    assert data["strong_one_core"]["augment"]["slices_per_s"] > 0
    assert data["parallel"]["batch"] == 2
    if importlib.util.find_spec("cv2") is None:  # OpenCV is a benchmark extra, not a dependency
        assert "skipped" in data["bare_warp"] and "OpenCV is not installed" in result.output
    else:
        assert data["bare_warp"]["time_ratio"] > 0 and "time ratio augment / cv2" in result.output
    assert not (tmp_path / "bench.json.tmp").exists()


def test_bench_augment_is_reachable_from_the_main_group():
    result = CliRunner().invoke(main, ["bench", "augment", "--help"])
    assert result.exit_code == 0 and "--imgaug-python" in result.output


def test_benchmark_scripts_run_on_the_library_not_the_cli():
    root = Path(__file__).resolve().parents[2]
    for script in sorted((root / "benchmarks").glob("bench_*.py")):
        source = script.read_text()
        assert "kequireg.bench" in source and "from cli" not in source and "import cli" not in source, script.name
        proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=root)
        assert proc.returncode == 0 and "usage:" in proc.stdout, (script.name, proc.stderr)


STUB_IMGAUG = {
    "cv2.py": "def setNumThreads(n):\n    pass\n",
    "imgaug/__init__.py": "__version__ = 'stub'\n\ndef seed(s):\n    pass\n",
    "imgaug/augmenters.py": (
        "class _Op:\n"
        "    def __init__(self, *args, **kwargs):\n        pass\n"
        "    def to_deterministic(self):\n        return self\n"
        "    def augment_image(self, image):\n        return image\n"
        "    def augment_segmentation_maps(self, seg):\n        return seg\n"
        "Sequential = Fliplr = Flipud = Affine = ElasticTransformation = _Op\n"
    ),
    "imgaug/augmentables/__init__.py": "",
    "imgaug/augmentables/segmaps.py": "class SegmentationMapsOnImage:\n    def __init__(self, *args, **kwargs):\n        pass\n",
}


def test_imgaug_peer_script_runs_in_another_interpreter_with_the_shared_timing(tmp_path, monkeypatch):
    """The peer file runs by path (no kequireg import), times with kequireg/bench/timing.py, prints JSON."""
    from kequireg.bench.augment import make_inputs, strong_imgaug

    for name, text in STUB_IMGAUG.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = strong_imgaug(make_inputs(), 0.1, sys.executable)
    assert result["version"] == "stub" and result["slices"] >= 2 and result["slices_per_s"] > 0, result
    assert set(result) == {"slices_per_s", "slices", "fastest_slice_ms", "version"}
    assert "skipped" in strong_imgaug(make_inputs(), 0.1, None)
