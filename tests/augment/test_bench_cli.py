"""`kequireg bench augment` runs end to end (tiny settings) and writes its JSON atomically."""

import importlib.util
import json

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
