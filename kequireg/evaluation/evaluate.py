"""Old import path of the CSV helpers, kept only for ``tests/experiments/conftest.py``: delete once it imports ``kequireg.io``.

Evaluation lives in ``kequireg.evaluation.run`` (``evaluate_run``), ``score_store``,
``score_folders``, ``summary`` and ``results``; file helpers in ``kequireg.io``.
"""

from kequireg.io import atomic_write_text, rows_to_csv

__all__ = ["atomic_write_text", "rows_to_csv"]
