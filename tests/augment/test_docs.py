"""The Python examples in docs/augment.md run as written."""

import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "augment.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_docs_example_runs(index):
    code = BLOCKS[index]
    if "torch" in code and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    exec(compile(code, f"docs/augment.md[python block {index}]", "exec"), {})
