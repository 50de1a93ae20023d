"""The ``kequireg`` command line: one click group, one module per command."""
