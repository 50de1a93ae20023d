"""A progress bar on stderr for the evaluation loops (click), or none."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def progress_bar(iterable: Iterable, enabled: bool, label: str, length: int | None = None) -> Iterator:
    """Yield from ``iterable``, with a click progress bar on stderr when ``enabled``.

    Args:
        iterable: the items.
        enabled: bool. Draw the bar.
        label: str. Text before the bar.
        length: int. Number of items, for an iterable without ``len``.
    """
    if not enabled:
        yield from iterable
        return
    import click

    # click >= 8.2 refuses to iterate a progress bar outside its ``with`` block
    with click.progressbar(iterable, label=label, length=length, file=click.get_text_stream("stderr")) as bar:
        yield from bar
