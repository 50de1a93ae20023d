"""Augment engine benchmarks (DESIGN.md "Performance workloads") as a script.

Same code and options as ``kequireg bench augment``; the measuring lives in
``cli/bench_augment.py``. Example::

    python benchmarks/bench_augment.py --imgaug-python /work/venv-imgaug/bin/python --json bench_augment.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench_augment import augment  # noqa: E402

if __name__ == "__main__":
    augment(prog_name="bench_augment.py")
