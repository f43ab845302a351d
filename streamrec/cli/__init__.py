"""``streamrec``: the one place where the layers are composed into processes.

Built on click: shared options are declared once (:mod:`streamrec.cli.options`), every command module
imports its heavy dependencies inside the command, so ``streamrec serve --help`` loads neither torch
nor offline/. Bad input is one line on stderr naming the fix, with exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata

import click

from streamrec.cli.plumbing import CommandError, Group


def version() -> str:
    """The installed distribution's version."""
    import streamrec

    given = getattr(streamrec, "__version__", None)
    if given:
        return str(given)
    try:
        return metadata.version("streamrec")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version(), prog_name="streamrec", message="%(prog)s %(version)s")
def cli() -> None:
    """A streaming real-time recommender: Kafka events -> online learners -> a distilled ONNX scorer.

    Every command that takes configuration reads it from defaults < --config FILE < STREAMREC_* variables
    < --set NAME=VALUE; `streamrec config reference` lists every setting."""


def _register() -> None:
    from streamrec.cli.demo import demo, soak
    from streamrec.cli.evaluate import bench, evaluate
    from streamrec.cli.model import model
    from streamrec.cli.report import config, report
    from streamrec.cli.streaming import broker, produce, serve, stream
    from streamrec.cli.train import train

    for command in (broker, produce, stream, serve, evaluate, bench, demo, train, model, report, soak, config):
        cli.add_command(command)


_register()


def parse(argv: Sequence[str]) -> click.Context:
    """The context of the command ``argv`` names, parsed but not run: checks a command line (compose files)."""
    ctx = click.Context(cli, info_name="streamrec")
    command: click.Command = cli
    args = list(argv)
    while isinstance(command, click.Group):
        name, found, args = command.resolve_command(ctx, args)
        assert name is not None and found is not None
        if isinstance(found, click.Group):
            ctx, command = click.Context(found, info_name=name, parent=ctx), found
        else:
            return found.make_context(name, args, parent=ctx)
    return ctx


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point: 0 done, 1 refused or failed, 2 bad input (one line on stderr)."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="streamrec", standalone_mode=False)
    except click.ClickException as exc:
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else "streamrec"
        print(f"{where}: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return 2
    except click.Abort:
        return 130
    return code if isinstance(code, int) else 0
