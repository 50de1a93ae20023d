"""augment is a standalone library: importing it pulls in no deep-learning framework."""

import subprocess
import sys


def test_import_augment_imports_no_framework_or_kequireg():
    code = (
        "import sys, augment\n"
        "augment.warp_image\n"
        "forbidden = ('keras', 'tensorflow', 'jax', 'torch', 'kequireg')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in forbidden)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import augment loaded: {out.stdout.strip()}"
