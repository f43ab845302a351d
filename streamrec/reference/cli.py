"""The CLI reference, generated from the click commands themselves: every command, its usage, its help
and every option with its help and default, so the page cannot drift from what `--help` prints."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import click

from streamrec.cli import cli


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _commands(group: click.Group, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        assert command is not None
        sub = click.Context(command, info_name=name, parent=ctx)
        if isinstance(command, click.Group):
            yield from _commands(command, sub)
        else:
            yield command, sub


def _row(param: click.Parameter, ctx: click.Context) -> str | None:
    if isinstance(param, click.Argument):
        choices = getattr(param.type, "choices", None)
        text = f"One of: {', '.join(map(str, choices))}." if choices else "Required."
        return f"| `{param.make_metavar(ctx)}` | {text} |"
    record = param.get_help_record(ctx)
    return f"| `{_cell(record[0])}` | {_cell(record[1])} |" if record else None


def section(command: click.Command, ctx: click.Context) -> str:
    """One command: its usage line, its help, and a table of its arguments and options."""
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    rows = [row for row in (_row(p, ctx) for p in command.get_params(ctx)) if row]
    table = ["| argument or option | description |", "|---|---|", *rows]
    help_ = inspect.cleandoc(command.help or "")
    return "\n".join([f"## `{ctx.command_path}`", "", f"```\n{usage}\n```", "", help_, "", *table])


def render() -> str:
    """The Markdown reference of every command and option."""
    root = click.Context(cli, info_name="streamrec")
    intro = [
        "# Command line",
        "",
        inspect.cleandoc(cli.help or ""),
        "",
        "Run any command with `--help` for the same text. `python -m streamrec.cli` is the same program.",
    ]
    return "\n\n".join(["\n".join(intro), *(section(c, ctx) for c, ctx in _commands(cli, root))]) + "\n"
