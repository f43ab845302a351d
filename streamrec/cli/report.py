"""Reading results: the HTML report of a run, and the configuration reference."""

from __future__ import annotations

import click

from streamrec.cli.options import Settings, config_options, json_option, log_level_option
from streamrec.cli.plumbing import Group, UsageError, emit


@click.command()
@click.argument("run_record", metavar="RUN_RECORD")
@click.option(
    "--ablations", metavar="JSON", help="The output of `streamrec train --once --ablations --json`, to include."
)
@click.option("-o", "--output", metavar="HTML", help="Where to write the page (default: RUN_RECORD.html).")
@log_level_option
def report(run_record: str, ablations: str | None, output: str | None) -> int:
    """An HTML report of a run (plots embedded) from its run record (`streamrec demo --run-record PATH`)."""
    from streamrec.report import write_report
    from streamrec.run_record import RecordError

    try:
        out, plots = write_report(run_record, output, ablations)
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out} ({len(plots)} plots)")
    return 0


@click.group(cls=Group)
def config() -> None:
    """The configuration: every setting documented, and the values a command would run with."""


@config.command()
def reference() -> int:
    """Every setting, its type, default, variable and description (Markdown)."""
    from streamrec.reference.config import render

    print(render(), end="")
    return 0


@config.command()
@config_options()
@json_option()
def show(settings: Settings, as_json: bool) -> int:
    """The merged configuration (defaults < --config < STREAMREC_* variables < --set), as TOML."""
    import msgspec

    from streamrec.reference.config import to_toml

    cfg = settings.load()
    if as_json:
        emit(msgspec.to_builtins(cfg), True)
    else:
        print(to_toml(cfg), end="")
    return 0
