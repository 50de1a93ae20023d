"""A click group whose subcommands are imported only when run (``kequireg`` and ``kequireg bench``).

``kequireg --help`` stays instant, and no command pulls in keras before ``--backend`` has set
``KERAS_BACKEND``.
"""

from __future__ import annotations

import importlib

import click


class LazyGroup(click.Group):
    """A click group over ``{name: (module, attribute, one-line help)}``, importing a command when it is run.

    Args:
        commands: dict. Subcommand name -> (module path, attribute of the click command, help line
            shown in the group's ``--help``).
        section: str. Heading of the subcommand list in ``--help``. Defaults to ``"Commands"``.
        **kwargs: passed to ``click.Group``.
    """

    def __init__(self, *args, commands: dict[str, tuple[str, str, str]], section: str = "Commands", **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = commands
        self.section = section

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.lazy_commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return None
        module_name, attr, _ = self.lazy_commands[cmd_name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section(self.section):
            formatter.write_dl([(name, help_) for name, (_, _, help_) in self.lazy_commands.items()])
